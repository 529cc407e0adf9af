//! Text that came from outside (file names, cell values, council names), made safe for the place
//! it goes. An uploader writes file names and cell values; the WDIV API writes council names. None
//! of it may forge lines, headings, mentions or terminal commands where staff read it.
//!
//! Each sink has one function and calls it in one place: plain text for email and the wire
//! ([`one_line`]), and logs and terminals ([`escape_control`]) here; markdown for GitHub in the
//! service's `markdown` module.

use std::fmt::Write;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The most characters of a value that a message quotes.
pub const MAX_QUOTED_CHARS: usize = 40;
/// The most bytes of one message.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A character that changes how text around it is shown rather than showing itself: control
/// characters, Unicode format characters (category Cf: bidi overrides, zero-width joiners…) and
/// line or paragraph separators.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Every hidden character shown as a visible escape (`\n`, `\t`, `\u{202e}`), so that a log line,
/// an email or a terminal shows the text as it is and cannot be driven by it. Backslashes stay as
/// they are: text that spells an escape shows as what it spells, which is harmless.
pub fn escape_control(text: &str) -> String {
    if !text.chars().any(is_hidden) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` in place of the rest.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let kept: String = text.chars().take(max.saturating_sub(1)).collect();
            format!("{kept}…")
        }
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…` in place of the rest.
pub fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `text` cut to at most `max` characters by taking out its middle: the start and the end kept,
/// with `…` between.
pub fn shorten_middle(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max || max == 0 {
        return text.chars().take(max).collect();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(count - tail));
    out
}

/// A value as a message quotes it: hidden characters escaped, at most [`MAX_QUOTED_CHARS`]
/// characters, in double quotes.
pub fn quote(value: &str) -> String {
    let shown = escape_control(&truncate_chars(value, MAX_QUOTED_CHARS));
    format!("\"{}\"", shown.replace('"', "\\\""))
}

/// A message as it may leave the program: one line (hidden characters escaped) of at most
/// [`MAX_MESSAGE_BYTES`]. Bounding twice (a message when it is made, then again when its report
/// is read back) changes nothing: escaping leaves backslashes alone, and a bounded line has no
/// hidden character left to escape.
pub fn one_line(message: &str) -> String {
    truncate_bytes(&escape_control(message), MAX_MESSAGE_BYTES)
}

/// A short label from outside (a column name, a problem code): hidden characters escaped, at most
/// `max` characters. Like [`one_line`], bounding twice changes nothing.
pub fn bounded_label(label: &str, max: usize) -> String {
    truncate_chars(&escape_control(label), max)
}

/// A short name from outside (a council name): hidden characters removed, whitespace collapsed,
/// at most `max` characters.
pub fn clean_name(name: &str, max: usize) -> String {
    let visible: String = name
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !is_hidden(*c))
        .collect();
    let collapsed = visible.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&collapsed, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortening_keeps_the_start_and_the_end() {
        assert_eq!(shorten_middle("abcdefghij", 20), "abcdefghij");
        assert_eq!(shorten_middle("abcdefghij", 5), "ab…ij");
        assert_eq!(shorten_middle("abcdefghij", 6), "abc…ij");
        let long = format!("E1/2024/t/{}.csv", "ŵ".repeat(300));
        let short = shorten_middle(&long, 255);
        assert_eq!(short.chars().count(), 255);
        assert!(short.starts_with("E1/2024/t/ŵ") && short.ends_with("ŵ.csv"));
    }

    #[test]
    fn hidden_characters_are_escaped_not_kept() {
        assert_eq!(escape_control("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(
            escape_control("evil\u{202e}vsc.csv"),
            "evil\\u{202e}vsc.csv"
        );
        assert_eq!(escape_control("a\u{2028}b"), "a\\u{2028}b");
        assert_eq!(escape_control("plain é"), "plain é");
        assert_eq!(escape_control("a\\nb"), "a\\nb");
        assert!(is_hidden('\u{200b}') && is_hidden('\u{feff}') && !is_hidden('é'));
    }

    #[test]
    fn quotes_and_messages_are_bounded_and_on_one_line() {
        let long = "x".repeat(100);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 2);
        assert!(quoted.ends_with("…\""));
        let message = one_line(&format!("{}\nFile: forged", "y".repeat(5000)));
        assert!(message.len() <= MAX_MESSAGE_BYTES);
        assert!(!message.contains('\n'));
        assert_eq!(truncate_bytes("ééé", 4), "…");
        assert_eq!(truncate_bytes("abc", 3), "abc");
    }

    #[test]
    fn bounding_twice_changes_nothing() {
        let hostile = format!(
            "{}\nFile: forged \\ {}",
            "y".repeat(3000),
            quote("a\\b\u{1b}")
        );
        let once = one_line(&hostile);
        assert!(once.len() <= MAX_MESSAGE_BYTES && !once.contains('\n'));
        assert_eq!(one_line(&once), once);
        let quoted = format!("value {}", quote("C:\\dir\nx"));
        assert_eq!(one_line(&quoted), quoted);
        let label = bounded_label(&format!("{}\u{1b}[2J", "c".repeat(60)), 40);
        assert_eq!(label.chars().count(), 40);
        assert_eq!(bounded_label(&label, 40), label);
        assert_eq!(bounded_label("a\u{1b}b", 40), "a\\u{1b}b");
        assert_eq!(bounded_label("Post_Code", 40), "Post_Code");
    }

    #[test]
    fn names_lose_hidden_characters_and_length() {
        assert_eq!(
            clean_name("  Tendring\n## District \u{202e}Council ", 200),
            "Tendring ## District Council"
        );
        assert_eq!(clean_name(&"n".repeat(1000), 200).chars().count(), 200);
    }
}
