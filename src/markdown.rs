//! Text from outside (file names, council names) as GitHub shows it: inside a markdown line, as a
//! code span, or as an issue's title. None of it may forge headings, mentions or links.

use wdiv_checks::text::escape_control;

/// Text for GitHub markdown, inside a line: hidden characters (line breaks among them) escaped,
/// the characters that open inline markdown (code, emphasis, links, images, HTML, entities,
/// strike-through, tables, issue references) backslash-escaped, and `@` kept from starting a
/// mention. Characters that mean something only at the start of a line (`-`, `+`, `=`, digits
/// and `.`) stay as they are: the text never starts one.
pub fn markdown_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in escape_control(text).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' | '|' | '<' | '>' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            // A zero-width joiner would be hidden; an escaped `@` still mentions on GitHub, so the
            // mention is broken with a visible character instead.
            '@' => out.push_str("@\u{2060}"),
            c => out.push(c),
        }
    }
    // The word joiner above is a format character added on purpose, after escaping.
    out
}

/// A name as a GitHub issue title shows it, which it renders in part: code spans, issue
/// references (`#1`, `GH-1`, `owner/repo#1`), `:emoji:` codes and mentions. A title shows a
/// backslash as it is, so each of these is neutralised with a look-alike instead of escaped: a
/// backtick becomes `'`; a `#` before a digit becomes `No.` (after a space when it follows a
/// letter or digit); `GH-` before a digit becomes `GH `; `@` becomes the fullwidth `＠` (no
/// mention); a `:` that would open an emoji code is followed by a space; `](` (a link's text
/// then its address) becomes `] (`. Everything else (`Brighton & Hove`) stays as it is.
pub fn github_title(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let digit_at = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let emoji_name = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-');
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '`' => out.push('\''),
            '#' if digit_at(i + 1) => {
                // `Ward#1` reads `Ward No.1`.
                if out.chars().next_back().is_some_and(char::is_alphanumeric) {
                    out.push(' ');
                }
                out.push_str("No.")
            }
            '@' => out.push('＠'),
            '-' if digit_at(i + 1)
                && i >= 2
                && chars[i - 2].eq_ignore_ascii_case(&'g')
                && chars[i - 1].eq_ignore_ascii_case(&'h')
                && !chars
                    .get(i.wrapping_sub(3))
                    .is_some_and(|c| c.is_alphanumeric()) =>
            {
                out.push(' ')
            }
            ':' => {
                out.push(':');
                let name = chars[i + 1..].iter().take_while(|c| emoji_name(c)).count();
                if name > 0 && chars.get(i + 1 + name) == Some(&':') {
                    out.push(' ');
                }
            }
            ']' if chars.get(i + 1) == Some(&'(') => out.push_str("] "),
            c => out.push(c),
        }
    }
    out
}

/// Text as a markdown code span that the text cannot close: the fence is one backtick longer
/// than the longest run inside, with spaces when the text starts or ends with one.
pub fn markdown_code(text: &str) -> String {
    let text = escape_control(text);
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if text.starts_with('`') || text.ends_with('`') || longest > 0 {
        format!("{fence} {text} {fence}")
    } else {
        format!("{fence}{text}{fence}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_shows_no_code_reference_mention_emoji_or_link() {
        assert_eq!(
            github_title("Tendring [click here](https://evil.example/x) @octocat `x` #1"),
            "Tendring [click here] (https://evil.example/x) ＠octocat 'x' No.1"
        );
        assert_eq!(github_title("Brighton & Hove"), "Brighton & Hove");
        assert_eq!(
            github_title("owner/repo#12 gh-3 GH-4 SGH-5 :smile: :a:b: Ward #A"),
            "owner/repo No.12 gh 3 GH 4 SGH-5 : smile: : a: b: Ward #A"
        );
        assert_eq!(github_title("St. Helens: North"), "St. Helens: North");
        assert_eq!(github_title("a@b.example"), "a＠b.example");
        // Nothing it makes is made again: neutralising twice changes nothing.
        for name in ["x #1 `y` :z: @w GH-1 [a](b)", "::a::", "#1#2"] {
            let once = github_title(name);
            assert_eq!(github_title(&once), once, "{name}");
        }
    }

    #[test]
    fn markdown_cannot_be_forged() {
        let md = markdown_inline("x\n## Heading @octocat [link](http://e)");
        assert!(!md.contains('\n'));
        assert!(md.contains("\\#\\# Heading"));
        assert!(!md.contains("@octocat"));
        assert!(md.contains("\\[link\\](http://e)"), "{md}");
        assert_eq!(
            markdown_inline("2024-04-01T10:11:12.123456"),
            "2024-04-01T10:11:12.123456"
        );
        assert_eq!(markdown_code("a/b.csv"), "`a/b.csv`");
        let code = markdown_code("b`x\n## Injected heading\n@octocat.csv");
        assert!(code.starts_with("`` ") && code.ends_with(" ``"), "{code}");
        assert!(!code.contains('\n'));
        assert_eq!(markdown_code("a``b"), "``` a``b ```");
    }
}
