//! Email through SES v2 (SendEmail): plain text, UTF-8.

use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SES could not send the email to {to}: {code}: {message}")]
    Service {
        to: String,
        code: String,
        message: String,
    },
    #[error("SES could not send the email to {to}: {detail}")]
    Other { to: String, detail: String },
}

#[derive(Debug, Clone)]
pub struct Mailer {
    client: aws_sdk_sesv2::Client,
}

impl Mailer {
    pub fn new(sdk: &aws_config::SdkConfig) -> Mailer {
        Mailer {
            client: aws_sdk_sesv2::Client::new(sdk),
        }
    }

    /// Sends a text email; returns SES's message id. Throttling and 5xx are retried by the SDK.
    pub async fn send(
        &self,
        from: &str,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<String, MailError> {
        let other = |detail: String| MailError::Other {
            to: to.to_owned(),
            detail,
        };
        let text = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|e| other(e.to_string()))
        };
        let message = Message::builder()
            .subject(text(subject)?)
            .body(Body::builder().text(text(body)?).build())
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(from)
            .destination(Destination::builder().to_addresses(to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| match e.code() {
                Some(code) => MailError::Service {
                    to: to.to_owned(),
                    code: code.to_owned(),
                    message: e.message().unwrap_or_default().to_owned(),
                },
                None => other(DisplayErrorContext(&e).to_string()),
            })?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
