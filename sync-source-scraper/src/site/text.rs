//! Text out of HTML: entities are decoded by the HTML parser; here
//! whitespace is normalised and script content left out.

use scraper::{ElementRef, Html, Selector};

/// Collapses every run of whitespace (including non-breaking spaces) into
/// one space and trims the ends. NUL and other control characters count as
/// whitespace-like noise and are dropped.
pub(crate) fn normalize(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_hidden(name: &str) -> bool {
    matches!(name, "script" | "style" | "template")
}

const BLOCKS: &[&str] = &[
    "p", "div", "li", "tr", "td", "dd", "dt", "ul", "ol", "table",
];

/// Appends the text under `el` to `out`, without recursion (pages can be
/// nested arbitrarily deep). With `lines`, `<br>` and a change of the
/// enclosing block element (`p`, `div`, `li`, ...) start a new line;
/// otherwise `<br>` is a space.
fn collect(el: ElementRef<'_>, out: &mut String, lines: bool) {
    let mut last_block = None;
    for node in el.descendants() {
        let is_br = node.value().as_element().is_some_and(|e| e.name() == "br");
        if !is_br && !node.value().is_text() {
            continue;
        }
        let skipped = node
            .ancestors()
            .take_while(|a| a.id() != el.id())
            .any(|a| a.value().as_element().is_some_and(|e| is_hidden(e.name())));
        if skipped {
            continue;
        }
        if let Some(text) = node.value().as_text() {
            if lines {
                let block = node
                    .ancestors()
                    .find(|a| {
                        a.id() == el.id()
                            || a.value()
                                .as_element()
                                .is_some_and(|e| BLOCKS.contains(&e.name()))
                    })
                    .map(|a| a.id());
                if last_block.is_some() && block != last_block {
                    out.push('\n');
                }
                last_block = block;
                // A line break in the page's source is whitespace: only
                // `<br>` and blocks break lines.
                out.extend(text.chars().map(|c| match c {
                    '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => ' ',
                    c => c,
                }));
            } else {
                out.push_str(text);
            }
        } else {
            out.push(if lines { '\n' } else { ' ' });
        }
    }
}

/// The text of an element and its descendants, without script or style
/// content, normalised to one line (`<br>` is a space).
pub(crate) fn text_of(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    collect(el, &mut out, false);
    normalize(&out)
}

/// The text of an element keeping its line breaks: `<br>` and the ends of
/// block elements (`p`, `div`, `li`, `tr`) start a new line (a line break
/// in the HTML source is only whitespace); each line is normalised and
/// empty lines are dropped.
pub(crate) fn text_lines(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    collect(el, &mut out, true);
    out.lines()
        .map(normalize)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first non-empty text of `sel` in `doc`.
pub(crate) fn first_text(doc: &Html, sel: &Selector) -> Option<String> {
    doc.select(sel).map(text_of).find(|t| !t.is_empty())
}

/// A non-empty, normalised attribute value.
pub(crate) fn attr(el: ElementRef<'_>, name: &str) -> Option<String> {
    el.value()
        .attr(name)
        .map(normalize)
        .filter(|v| !v.is_empty())
}

/// At most `max` characters of `s`, for error messages.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_collapses_whitespace_and_drops_controls() {
        assert_eq!(normalize("  a \u{a0} b\t\nc\u{0}d "), "a b c d");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn lines_keep_breaks() {
        let doc = Html::parse_fragment(
            "<div id=x>Gate code 1234<br>key under   mat<br/><br> <p>call &amp; wait</p><script>no</script></div>",
        );
        let sel = Selector::parse("#x").unwrap();
        let el = doc.select(&sel).next().unwrap();
        assert_eq!(text_lines(el), "Gate code 1234\nkey under mat\ncall & wait");
        assert_eq!(text_of(el), "Gate code 1234 key under mat call & wait");
    }

    #[test]
    fn source_line_breaks_are_whitespace() {
        let doc = Html::parse_fragment(
            "<div id=x>Gate\n code\r\nis 1234<br>\nKey under\n\n the mat\n</div>",
        );
        let sel = Selector::parse("#x").unwrap();
        let el = doc.select(&sel).next().unwrap();
        assert_eq!(text_lines(el), "Gate code is 1234\nKey under the mat");
    }
}
