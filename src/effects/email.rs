//! Email staff through SES: a failure report to `ERROR_REPORT_EMAIL` when the upload fails its
//! checks (not for a lone Democracy Counts file whose partner is on its way), or a confirmation
//! to `SUCCESS_REPORT_EMAIL` when it passes.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::json;

use super::{
    not_configured, ClientMaker, Effect, EffectError, Entry, FailureKind, Names, Needed, Optional,
    Planned, Planning, Run, StepKind,
};
use crate::mail::{MailError, Mailer};
use crate::settings::{email_address, Key, Kind, Settings};
use crate::templates::{bounded_email, render, render_line};
use crate::vocab::EmailAddress;

/// Its steps: one or the other, by the verdict.
pub const EMAIL_FAILURE: StepKind = StepKind::new("email failure");
pub const EMAIL_SUCCESS: StepKind = StepKind::new("email success");

pub const EMAIL_FROM: Key = Key::new(
    "EMAIL_FROM",
    Kind::Plain,
    "the sender (an SES-verified identity)",
)
.default("pollingstations@democracyclub.org.uk")
.rule(email_address);
pub const ERROR_REPORT_EMAIL: Key = Key::new(
    "ERROR_REPORT_EMAIL",
    Kind::Plain,
    "staff, told of an upload that fails its checks",
)
.rule(email_address);
pub const SUCCESS_REPORT_EMAIL: Key = Key::new(
    "SUCCESS_REPORT_EMAIL",
    Kind::Plain,
    "who is told of an upload that passes",
)
.rule(email_address);

/// The emails, in the registry.
pub const EFFECT: Entry = Entry {
    keys: &[EMAIL_FROM, ERROR_REPORT_EMAIL, SUCCESS_REPORT_EMAIL],
    plan,
    client: Some(ClientMaker {
        wanted: |s| {
            [EmailKind::Failure, EmailKind::Success]
                .into_iter()
                .any(|kind| config(s, kind).get().is_some())
        },
        aws: true,
        make: |_, shared| Ok(std::sync::Arc::new(Mailer::new(shared.sdk()?))),
    }),
    production: Some(Needed {
        what: "the failure email",
        keys: &[ERROR_REPORT_EMAIL],
    }),
};

/// A sender and a recipient: `EMAIL_FROM` with `ERROR_REPORT_EMAIL`, or with
/// `SUCCESS_REPORT_EMAIL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    pub from: EmailAddress,
    pub to: EmailAddress,
}

/// Which email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// To staff: the upload failed its checks.
    Failure,
    /// A confirmation: the upload passed.
    Success,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEmail {
    pub kind: EmailKind,
    /// Sender and recipient; absent when the recipient is not configured (then skipped).
    pub mail: Option<MailConfig>,
    pub subject: String,
    pub body: String,
}

/// The one place that decides whether an email of `kind` is configured: its recipient (the
/// sender has a default).
pub fn config(s: &Settings, kind: EmailKind) -> Optional<MailConfig> {
    let to = match kind {
        EmailKind::Failure => &ERROR_REPORT_EMAIL,
        EmailKind::Success => &SUCCESS_REPORT_EMAIL,
    };
    match (s.values.text(to), s.values.text(&EMAIL_FROM)) {
        (Some(address), Some(from)) => Optional::On(MailConfig {
            from: EmailAddress::new(from),
            to: EmailAddress::new(address),
        }),
        (None, _) => Optional::Off { missing: to.name },
        (_, None) => Optional::Off {
            missing: EMAIL_FROM.name,
        },
    }
}

pub fn plan(p: &Planning<'_>) -> Vec<Planned> {
    let kind = match p.valid {
        true => EmailKind::Success,
        false => EmailKind::Failure,
    };
    let config = config(p.settings, kind);
    let skip = if p.valid {
        config
            .why_off()
            .map(|why| format!("no confirmation: {why}"))
    } else if !p.report.email_due() {
        Some("no email for a lone file whose partner is on its way".to_owned())
    } else {
        config.why_off()
    };
    let (subject, body) = match kind {
        EmailKind::Failure => ("email_failure_subject.txt", "email_failure_body.txt"),
        EmailKind::Success => ("email_success_subject.txt", "email_success_body.txt"),
    };
    let email = SendEmail {
        kind,
        mail: config.get().cloned(),
        subject: render_line(subject, &p.context),
        body: bounded_email(render(body, &p.context)),
    };
    vec![Planned::new(email, skip)]
}

/// Throttling passes; a refused sender or recipient does not.
fn kind_of(e: &MailError) -> FailureKind {
    match e {
        MailError::Service { code, .. }
            if code.contains("Throttl") || code == "TooManyRequestsException" =>
        {
            FailureKind::Transient
        }
        MailError::Service { .. } => FailureKind::Permanent,
        MailError::Other { .. } => FailureKind::Transient,
    }
}

#[async_trait]
impl Effect for SendEmail {
    fn kind(&self) -> StepKind {
        match self.kind {
            EmailKind::Failure => EMAIL_FAILURE,
            EmailKind::Success => EMAIL_SUCCESS,
        }
    }

    fn target(&self, _: &Names) -> String {
        let to = self.mail.as_ref().map_or("(not set)", |m| m.to.as_str());
        format!("to {to}: {:?}", self.subject)
    }

    fn data(&self) -> serde_json::Value {
        json!({
            "kind": self.kind,
            "from": self.mail.as_ref().map(|m| m.from.as_str()),
            "to": self.mail.as_ref().map(|m| m.to.as_str()),
            "subject": self.subject,
            "body": self.body,
        })
    }

    async fn perform(&self, run: &Run<'_>) -> Result<String, EffectError> {
        let (Some(mailer), Some(mail)) = (run.clients.get::<Mailer>(), &self.mail) else {
            return Err(not_configured("SES"));
        };
        let id = mailer
            .send(
                mail.from.as_str(),
                mail.to.as_str(),
                &self.subject,
                &self.body,
            )
            .await
            .map_err(|e| EffectError::new(kind_of(&e), e))?;
        Ok(format!("sent (message {id})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::tests_support::{planning, report, settings};
    use wdiv_checks::Problem;

    #[test]
    fn staff_hear_of_a_failure_and_a_confirmation_only_when_asked_for() {
        let staff = settings(&[("ERROR_REPORT_EMAIL", "staff@example.org")]);
        let failed = report(false);
        let steps = plan(&planning(&failed, &staff));
        assert_eq!(steps[0].effect.verb(), "email failure");
        assert_eq!(steps[0].skip, None);
        assert_eq!(
            steps[0].effect.target(&Names::default()),
            "to staff@example.org: \"Error with data for council X01-Somewhere\""
        );
        let passed = report(true);
        let steps = plan(&planning(&passed, &staff));
        assert_eq!(steps[0].effect.verb(), "email success");
        assert_eq!(
            steps[0].skip.as_deref(),
            Some("no confirmation: SUCCESS_REPORT_EMAIL not set")
        );
    }

    #[test]
    fn no_email_for_a_lone_file_whose_partner_is_on_its_way() {
        let staff = settings(&[("ERROR_REPORT_EMAIL", "staff@example.org")]);
        let mut lone = report(true);
        lone.file_set[0].problems.push(Problem::error(
            wdiv_checks::Code::MissingFiles,
            "Expected 2 files, found 1",
        ));
        let steps = plan(&planning(&lone, &staff));
        assert_eq!(
            steps[0].skip.as_deref(),
            Some("no email for a lone file whose partner is on its way")
        );
    }

    #[test]
    fn throttling_is_transient_a_refused_address_is_not() {
        let service = |code: &str| MailError::Service {
            to: "staff@example.org".into(),
            code: code.into(),
            message: "m".into(),
        };
        assert_eq!(
            kind_of(&service("TooManyRequestsException")),
            FailureKind::Transient
        );
        assert_eq!(kind_of(&service("MessageRejected")), FailureKind::Permanent);
    }
}
