//! Path style: the literal words of every path segment share one style (the
//! style most of them use), and no path ends with a slash or has an empty
//! segment.

use serde_json::Value;

use super::{Linter, PATH_STYLE_CONSISTENT, child};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Kebab,
    Snake,
    Camel,
    Pascal,
}

/// In the order that breaks a tie for the majority.
const STYLES: [Style; 4] = [Style::Kebab, Style::Snake, Style::Camel, Style::Pascal];

impl Style {
    fn name(self) -> &'static str {
        match self {
            Style::Kebab => "kebab-case",
            Style::Snake => "snake_case",
            Style::Camel => "camelCase",
            Style::Pascal => "PascalCase",
        }
    }
}

/// What a segment's literal words say about its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// One lower-case word (or digits): fits any style.
    Neutral,
    Styled(Style),
    /// Two styles in one segment, e.g. `image_variations-list`.
    Mixed,
    /// Characters other than ASCII letters, digits, `-` and `_`.
    Odd,
}

impl<'d> Linter<'d> {
    pub(super) fn path_style(&mut self) {
        let doc = self.doc;
        let templates: Vec<&str> = doc
            .root
            .get("paths")
            .and_then(Value::as_object)
            .map(|paths| paths.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for template in &templates {
            self.path_shape(template);
        }
        let segments: Vec<(&str, &str, Word)> = templates
            .iter()
            .flat_map(|t| t.split('/').map(move |s| (*t, s, segment_style(s))))
            .collect();
        let majority = majority(segments.iter().map(|(_, _, w)| *w));
        for (template, segment, word) in segments {
            let message = match (word, majority) {
                (Word::Mixed, _) => format!("segment {segment:?} mixes word styles"),
                (Word::Odd, _) => format!(
                    "segment {segment:?} has characters other than letters, digits, - and _"
                ),
                (Word::Styled(style), Some(most)) if style != most => format!(
                    "segment {segment:?} is {} but most path segments are {}",
                    style.name(),
                    most.name()
                ),
                _ => continue,
            };
            self.report(
                &PATH_STYLE_CONSISTENT,
                child("", "paths", template),
                message,
            );
        }
    }

    /// `/a/` and `/a` are different routes to a router, the same to a reader.
    fn path_shape(&mut self, template: &str) {
        let at = child("", "paths", template);
        if template.len() > 1 && template.ends_with('/') {
            self.report(
                &PATH_STYLE_CONSISTENT,
                at.as_str(),
                "path ends with a slash",
            );
        }
        if template.contains("//") {
            self.report(&PATH_STYLE_CONSISTENT, at, "path has an empty segment (//)");
        }
    }
}

/// The style most styled segments use; a tie goes to the earlier in [`STYLES`].
fn majority(words: impl Iterator<Item = Word>) -> Option<Style> {
    let mut counts = [0usize; STYLES.len()];
    for word in words {
        if let Word::Styled(style) = word
            && let Some(i) = STYLES.iter().position(|s| *s == style)
        {
            counts[i] += 1;
        }
    }
    let mut best: Option<(Style, usize)> = None;
    for (style, count) in STYLES.iter().zip(counts) {
        if count > best.map_or(0, |(_, c)| c) {
            best = Some((*style, count));
        }
    }
    best.map(|(style, _)| style)
}

/// A segment's style: its template expressions dropped, its words (split at
/// `.` and `:`, as in `openapi.json` or `{id}:cancel`) agreeing.
fn segment_style(segment: &str) -> Word {
    let literal = without_templates(segment);
    literal
        .split(['.', ':'])
        .map(|w| word_style(w.trim_matches(['-', '_'])))
        .fold(Word::Neutral, combine)
}

fn combine(a: Word, b: Word) -> Word {
    match (a, b) {
        (Word::Odd, _) | (_, Word::Odd) => Word::Odd,
        (Word::Neutral, other) | (other, Word::Neutral) => other,
        (Word::Styled(x), Word::Styled(y)) if x == y => a,
        _ => Word::Mixed,
    }
}

fn word_style(word: &str) -> Word {
    if !word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Word::Odd;
    }
    let dash = word.contains('-');
    let underscore = word.contains('_');
    let upper = word.chars().any(|c| c.is_ascii_uppercase());
    match (dash, underscore, upper) {
        (false, false, false) => Word::Neutral,
        (true, false, false) => Word::Styled(Style::Kebab),
        (false, true, false) => Word::Styled(Style::Snake),
        (false, false, true) if word.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Word::Styled(Style::Pascal)
        }
        (false, false, true) => Word::Styled(Style::Camel),
        _ => Word::Mixed,
    }
}

/// The segment with each `{name}` replaced by a word break.
fn without_templates(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut inside = false;
    for c in segment.chars() {
        match c {
            '{' => inside = true,
            '}' if inside => {
                inside = false;
                out.push('.');
            }
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_classified_by_their_literal_words() {
        let cases = [
            ("images", Word::Neutral),
            ("v1", Word::Neutral),
            ("{id}", Word::Neutral),
            ("openapi.json", Word::Neutral),
            ("image-variations", Word::Styled(Style::Kebab)),
            ("{id}:cancel-all", Word::Styled(Style::Kebab)),
            ("{from}-{to}", Word::Neutral),
            ("image_variations", Word::Styled(Style::Snake)),
            ("imageVariations", Word::Styled(Style::Camel)),
            ("ImageVariations", Word::Styled(Style::Pascal)),
            ("image_variations-x", Word::Mixed),
            ("image-vari.other_x", Word::Mixed),
            ("@me", Word::Odd),
        ];
        for (segment, want) in cases {
            assert_eq!(segment_style(segment), want, "{segment}");
        }
    }

    #[test]
    fn majority_ties_go_to_kebab_case() {
        let kebab = Word::Styled(Style::Kebab);
        let snake = Word::Styled(Style::Snake);
        assert_eq!(majority([snake, kebab].into_iter()), Some(Style::Kebab));
        assert_eq!(
            majority([snake, kebab, snake].into_iter()),
            Some(Style::Snake)
        );
        assert_eq!(majority([Word::Neutral].into_iter()), None);
    }
}
