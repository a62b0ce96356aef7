//! `inject`'s templates: the `{{ st://KEY }}` references of a text, and the
//! document a filled YAML or JSON template must stay.
//!
//! A text template takes each value as it is. In a YAML or JSON template a
//! value is written so that the document keeps the shape the template gave
//! it: escaped inside a quoted string; a whole unquoted YAML value is a
//! number or boolean when the value is written as YAML writes one (`8080`,
//! `true`), else a string (unquoted when it is plain letters and digits,
//! double-quoted otherwise); a JSON reference outside quotes takes only a number, `true`,
//! `false` or `null`. Anything else that would change the document (a line
//! break in a single-quoted YAML string, a value that adds keys or items in
//! the middle of an unquoted one) is refused, naming the key and never the
//! value. Every filled YAML or JSON document is parsed again and compared
//! with what the template promised before it is handed out.

use std::collections::HashMap;
use zeroize::Zeroizing;

/// What a template is, for how values are written into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Yaml,
    Json,
}

/// A piece of a template: text, or a reference to a key.
#[derive(Debug, PartialEq)]
pub enum Piece<'a> {
    Text(&'a str),
    Key(&'a str),
}

/// Splits a template at its `{{ st://KEY }}` references.
pub fn parse(template: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let (mut text_start, mut search) = (0, 0);
    while let Some(found) = template[search..].find("{{") {
        let open = search + found;
        match reference_at(&template[open + 2..]) {
            Some((key, len)) => {
                if open > text_start {
                    pieces.push(Piece::Text(&template[text_start..open]));
                }
                pieces.push(Piece::Key(key));
                text_start = open + 2 + len;
                search = text_start;
            }
            None => search = open + 2,
        }
    }
    if text_start < template.len() {
        pieces.push(Piece::Text(&template[text_start..]));
    }
    pieces
}

/// What starts a reference's key, in a template and in an env file: the
/// library's, as are the key syntax and [`reference`] (one parser for the
/// environment and secrets file the library resolves, env files and
/// templates).
pub use st_secrets::secrets::{
    ends_reference_key as ends_key, reference, REFERENCE_SCHEME as SCHEME,
};

/// The key of a reference whose `{{` comes just before `s`, and how many
/// bytes of `s` the reference spans (through its `}}`). Looks no further
/// than the key's end (the first whitespace, `{` or `}`): an unterminated
/// reference costs its own length, not the rest of the template.
fn reference_at(s: &str) -> Option<(&str, usize)> {
    let body = s.trim_start_matches([' ', '\t']).strip_prefix(SCHEME)?;
    let key_len = body.find(ends_key).unwrap_or(body.len());
    let key = &body[..key_len];
    let rest = body[key_len..].trim_start_matches([' ', '\t']);
    if key.is_empty() || !rest.starts_with("}}") {
        return None;
    }
    Some((key, s.len() - rest.len() + 2))
}

/// Fills `pieces` with `values` (one for every key referenced) as `kind`
/// needs. The error names the key and the rule, never a value.
pub fn fill(
    pieces: &[Piece<'_>],
    values: &HashMap<&str, &str>,
    kind: Kind,
) -> Result<Zeroizing<String>, String> {
    match kind {
        Kind::Text => Ok(join(pieces, |i| {
            Ok(values[key_of(pieces, i)].to_owned().into())
        })?),
        Kind::Json => fill_json(pieces, values),
        Kind::Yaml => fill_yaml(pieces, values),
    }
}

fn key_of<'a>(pieces: &[Piece<'a>], i: usize) -> &'a str {
    match pieces[i] {
        Piece::Key(k) => k,
        Piece::Text(_) => unreachable!("asked for a reference"),
    }
}

/// The template with piece `i` of every reference replaced by `write(i)`.
fn join(
    pieces: &[Piece<'_>],
    mut write: impl FnMut(usize) -> Result<Zeroizing<String>, String>,
) -> Result<Zeroizing<String>, String> {
    let mut out = Zeroizing::new(String::new());
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Key(_) => out.push_str(&write(i)?),
        }
    }
    Ok(out)
}

// ---- JSON ---------------------------------------------------------------------

/// `value` as the inside of a JSON string.
fn json_string_body(value: &str) -> Zeroizing<String> {
    let quoted = Zeroizing::new(serde_json::Value::from(value).to_string());
    Zeroizing::new(quoted[1..quoted.len() - 1].to_owned())
}

fn fill_json(
    pieces: &[Piece<'_>],
    values: &HashMap<&str, &str>,
) -> Result<Zeroizing<String>, String> {
    // Which references sit inside a string: the template's text scanned
    // with the references left out (a filled value never changes it).
    let mut in_string = vec![false; pieces.len()];
    let (mut inside, mut escaped) = (false, false);
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Key(_) => in_string[i] = inside,
            Piece::Text(t) => {
                for c in t.chars() {
                    if escaped {
                        escaped = false;
                    } else if inside && c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        inside = !inside;
                    }
                }
            }
        }
    }
    let out = join(pieces, |i| {
        let key = key_of(pieces, i);
        let value = values[key];
        if in_string[i] {
            return Ok(json_string_body(value));
        }
        match serde_json::from_str::<serde_json::Value>(value) {
            Ok(v) if !v.is_object() && !v.is_array() && !v.is_string() && value.trim() == value => {
                Ok(value.to_owned().into())
            }
            _ => Err(format!(
                "the reference to {key} is outside a JSON string and its value is not a \
                 number, true, false or null: put the reference inside quotes \
                 (\"{{{{ st://{key} }}}}\")"
            )),
        }
    })?;
    // The filled document must be JSON when the template (with a string in
    // every quoted place and 0 in every bare one) is.
    let probe = join(pieces, |i| {
        Ok(if in_string[i] { "x" } else { "0" }.to_owned().into())
    })?;
    if serde_json::from_str::<serde::de::IgnoredAny>(&probe).is_ok() {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&out) {
            return Err(format!(
                "the filled template is not JSON (line {}, column {}): nothing was written",
                e.line(),
                e.column()
            ));
        }
        // A key filled from a reference can repeat another key of its
        // object (`{"role": "reader", "{{ st://ROLE }}": ...}`): readers
        // disagree on which one counts (YAML refuses it), so refuse it too.
        if let Err(e) = serde_json::from_str::<UniqueKeys>(&out) {
            return Err(format!(
                "the filled template has a key twice in one object (line {}, column {}; a \
                 key filled from a reference?): nothing was written",
                e.line(),
                e.column()
            ));
        }
    }
    Ok(out)
}

/// A JSON value read only to check that no object repeats a key.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = Seen::default();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.0.insert(key) {
                return Err(serde::de::Error::custom("a repeated key"));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(self)
    }
}

/// The keys of one object, zeroed when dropped (filled keys may be secrets).
#[derive(Default)]
struct Seen(std::collections::HashSet<String>);

impl Drop for Seen {
    fn drop(&mut self) {
        for mut key in self.0.drain() {
            zeroize::Zeroize::zeroize(&mut key);
        }
    }
}

// ---- YAML ---------------------------------------------------------------------

/// Where a reference sits in a YAML document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Inside a double-quoted string.
    Double,
    /// Inside a single-quoted string.
    Single,
    /// The whole of an unquoted value (or key).
    WholePlain,
    /// Part of an unquoted value, or in a block scalar (`|`, `>`).
    PartPlain,
}

/// The probe written for reference `i`: it reads back differently in each
/// kind of string (`\"` is an escape only in double quotes, `''` only in
/// single ones), so parsing the probed template tells where each one is.
fn probe(i: usize) -> String {
    format!("stsecretsref{i}x\\\"''z")
}

/// The probes in `s`: where each starts, its reference's index, and where
/// the part that reads back differently begins (after `stsecretsref<i>x`).
fn marks(s: &str) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    const MARK: &str = "stsecretsref";
    s.match_indices(MARK).filter_map(move |(start, _)| {
        let digits = &s[start + MARK.len()..];
        let len = digits.bytes().take_while(u8::is_ascii_digit).count();
        let i = digits[..len].parse().ok()?;
        digits[len..]
            .starts_with('x')
            .then_some((start, i, start + MARK.len() + len + 1))
    })
}

/// The YAML documents of `text`, with the secrets file's limits (aliases
/// bounded by the text's size plus 1 MiB: a 115 KB template once grew to
/// 1.9 GB in memory).
fn yaml_documents(text: &str) -> Result<Vec<yaml_serde::Value>, String> {
    st_secrets::secrets::yaml_documents(text)
}

/// Calls `f` on every string of `value`, mapping keys included, replacing
/// each with what `f` returns.
fn map_strings(
    value: &yaml_serde::Value,
    f: &mut impl FnMut(&str) -> yaml_serde::Value,
) -> yaml_serde::Value {
    use yaml_serde::Value;
    match value {
        Value::String(s) => f(s),
        Value::Sequence(items) => {
            Value::Sequence(items.iter().map(|v| map_strings(v, f)).collect())
        }
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .map(|(k, v)| (map_strings(k, f), map_strings(v, f)))
                .collect(),
        ),
        Value::Tagged(t) => Value::Tagged(Box::new(yaml_serde::value::TaggedValue {
            tag: t.tag.clone(),
            value: map_strings(&t.value, f),
        })),
        other => other.clone(),
    }
}

/// `value` as the inside of a YAML double-quoted string.
fn yaml_double_body(value: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len()));
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            '\u{feff}' => out.push_str("\\ufeff"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whether YAML can hold `value` in single quotes: printable, one line.
fn single_quotable(value: &str) -> bool {
    !value
        .chars()
        .any(|c| (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
}

/// `value` read as an unquoted YAML scalar, when it reads as a number or a
/// boolean written the way YAML writes it (`8080`, `0.5`, `true`; not
/// `007` or `1e3`, which would not read back as the characters given), as
/// the template's author gets by leaving it unquoted.
fn typed_scalar(value: &str) -> Option<yaml_serde::Value> {
    if value.is_empty() || value.trim() != value || value.contains(['\n', '\r', '#', ':']) {
        return None;
    }
    match yaml_serde::from_str::<yaml_serde::Value>(value).ok()? {
        v @ yaml_serde::Value::Number(_) if yaml_serde::to_string(&v).ok()?.trim_end() == value => {
            Some(v)
        }
        v @ yaml_serde::Value::Bool(_) if value == "true" || value == "false" => Some(v),
        _ => None,
    }
}

/// Whether `value` can stand unquoted as a whole YAML value and read back as
/// the same string in YAML 1.2 and 1.1 readers alike (PyYAML reads `yes`,
/// `off` and `007` otherwise): a letter first, then letters, digits and
/// `_ . / + @ % ~ -`, and none of 1.1's boolean and null words.
fn plain_string(value: &str) -> bool {
    const WORDS: [&str; 11] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    value.chars().next().is_some_and(|c| c.is_alphabetic())
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || "_./+@%~-".contains(c))
        && !WORDS.iter().any(|w| value.eq_ignore_ascii_case(w))
        && yaml_serde::from_str::<yaml_serde::Value>(value).ok()
            == Some(yaml_serde::Value::String(value.to_owned()))
}

fn fill_yaml(
    pieces: &[Piece<'_>],
    values: &HashMap<&str, &str>,
) -> Result<Zeroizing<String>, String> {
    let probed = join(pieces, |i| Ok(probe(i).into()))?;
    let docs = yaml_documents(&probed).map_err(|e| {
        format!(
            "the template cannot be read as YAML ({e}; read with a placeholder for each \
             reference); use --format text"
        )
    })?;
    // Where each reference is (one pass over each string).
    let mut places: HashMap<usize, Place> = HashMap::new();
    for doc in &docs {
        map_strings(doc, &mut |s| {
            for (start, i, end) in marks(s) {
                let rest = &s[end..];
                let place = if rest.starts_with("\"''z") {
                    Place::Double
                } else if rest.starts_with("\\\"'z") {
                    Place::Single
                } else if start == 0 && rest == "\\\"''z" {
                    Place::WholePlain
                } else {
                    Place::PartPlain
                };
                places.insert(i, place);
            }
            yaml_serde::Value::Null
        });
    }
    // Each value written for its place.
    let mut typed: HashMap<usize, yaml_serde::Value> = HashMap::new();
    let out = join(pieces, |i| {
        let key = key_of(pieces, i);
        let value = values[key];
        match places.get(&i) {
            None => Err(format!(
                "the reference to {key} is not inside a YAML value (a comment?): nothing was written"
            )),
            Some(Place::Double) => Ok(yaml_double_body(value)),
            Some(Place::Single) if single_quotable(value) => {
                Ok(value.replace('\'', "''").into())
            }
            Some(Place::Single) => Err(format!(
                "the value of {key} holds a line break or control character, which a \
                 single-quoted YAML string cannot carry: put the reference in double quotes"
            )),
            Some(Place::WholePlain) => match typed_scalar(value) {
                Some(v) => {
                    typed.insert(i, v);
                    Ok(value.to_owned().into())
                }
                None if plain_string(value) => Ok(value.to_owned().into()),
                None => {
                    let mut quoted = Zeroizing::new(String::from("\""));
                    quoted.push_str(&yaml_double_body(value));
                    quoted.push('"');
                    Ok(quoted)
                }
            },
            Some(Place::PartPlain) => Ok(value.to_owned().into()),
        }
    })?;
    // The document the template promised: each probe replaced by its value.
    let expected: Vec<yaml_serde::Value> = docs
        .iter()
        .map(|doc| {
            map_strings(doc, &mut |s| {
                let mut filled = String::with_capacity(s.len());
                let mut copied = 0;
                for (start, i, end) in marks(s) {
                    let read_back = match places.get(&i) {
                        Some(Place::Double | Place::Single) => 4, // "''z, \"'z
                        _ => 5,                                   // \"''z
                    };
                    if let (Some(Place::WholePlain), Some(v)) = (places.get(&i), typed.get(&i)) {
                        return v.clone();
                    }
                    filled.push_str(&s[copied..start]);
                    filled.push_str(values[key_of(pieces, i)]);
                    copied = (end + read_back).min(s.len());
                }
                filled.push_str(&s[copied..]);
                yaml_serde::Value::String(filled)
            })
        })
        .collect();
    let got = yaml_documents(&out);
    if got.as_ref().ok() != Some(&expected) {
        let risky: Vec<&str> = pieces
            .iter()
            .enumerate()
            .filter(|(i, _)| places.get(i) == Some(&Place::PartPlain))
            .map(|(i, _)| key_of(pieces, i))
            .collect();
        let keys = if risky.is_empty() {
            "a value".to_owned()
        } else {
            format!("the value of {}", risky.join(", "))
        };
        return Err(format!(
            "{keys} would change the YAML document's structure where it is inserted unquoted: \
             put the reference inside double quotes (\"... {{{{ st://KEY }}}} ...\"); nothing \
             was written"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_split_at_references_only() {
        use Piece::{Key, Text};
        assert_eq!(
            parse("token: {{ st://HF_TOKEN }}\nurl: {{st://a.b-c}}!"),
            vec![
                Text("token: "),
                Key("HF_TOKEN"),
                Text("\nurl: "),
                Key("a.b-c"),
                Text("!")
            ]
        );
        assert_eq!(
            parse("{{ jinja }} {{ st:// }} {{ st://A B }} {{st://K}}"),
            vec![Text("{{ jinja }} {{ st:// }} {{ st://A B }} "), Key("K")]
        );
        assert_eq!(parse("{{ st://K"), vec![Text("{{ st://K")]);
        assert_eq!(parse(""), vec![]);
        // A whole value as a reference (env files): the same key syntax.
        assert_eq!(reference("st://a.b-c/d"), Some("a.b-c/d"));
        for not in [
            "st://", "st://A B", "st://K}", "x st://K", "ST://K", "st:/K",
        ] {
            assert_eq!(reference(not), None, "{not}");
        }
    }

    fn filled(template: &str, kind: Kind, pairs: &[(&str, &str)]) -> Result<String, String> {
        let values: HashMap<&str, &str> = pairs.iter().copied().collect();
        fill(&parse(template), &values, kind).map(|s| s.to_string())
    }

    #[test]
    fn yaml_places() {
        let t = "a: \"x{{ st://K }}y\"\nb: 'x{{ st://K }}y'\nc: {{ st://K }}\nd: [{{ st://K }}]\n";
        let v = "it's \"q\" \\ #x: - [y]";
        let out = filled(t, Kind::Yaml, &[("K", v)]).unwrap();
        let doc: yaml_serde::Value = yaml_serde::from_str(&out).unwrap();
        assert_eq!(doc["a"], format!("x{v}y").as_str());
        assert_eq!(doc["b"], format!("x{v}y").as_str());
        assert_eq!(doc["c"], v);
        assert_eq!(doc["d"][0], v);
        // A number stays one; a line break in single quotes is refused.
        let out = filled("port: {{ st://P }}\n", Kind::Yaml, &[("P", "8080")]).unwrap();
        assert_eq!(out, "port: 8080\n");
        for (value, written) in [
            ("007", "\"007\""),
            ("1e3", "\"1e3\""),
            ("null", "\"null\""),
            ("", "\"\""),
            ("true", "true"),
            ("hf_abc.DEF/1+2", "hf_abc.DEF/1+2"),
            ("off", "\"off\""),
            ("Yes", "\"Yes\""),
        ] {
            let out = filled("v: {{ st://P }}\n", Kind::Yaml, &[("P", value)]).unwrap();
            assert_eq!(out, format!("v: {written}\n"), "{value}");
        }
        let e = filled("b: '{{ st://K }}'\n", Kind::Yaml, &[("K", "two\nlines")]).unwrap_err();
        assert!(e.contains("K") && !e.contains("two"), "{e}");
        // Inside an unquoted value: refused when it would add structure.
        let e = filled("u: https://{{ st://H }}/x\n", Kind::Yaml, &[("H", "h # c")]).unwrap_err();
        assert!(e.contains("value of H"), "{e}");
        assert_eq!(
            filled("u: https://{{ st://H }}/x\n", Kind::Yaml, &[("H", "host")]).unwrap(),
            "u: https://host/x\n"
        );
    }

    #[test]
    fn json_places() {
        let out = filled(
            r#"{"a": "x{{ st://K }}", "n": {{ st://N }}}"#,
            Kind::Json,
            &[("K", "q\"\\\n\u{1}"), ("N", "42")],
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["a"], "xq\"\\\n\u{1}");
        assert_eq!(doc["n"], 42);
        let e = filled(
            r#"{"n": {{ st://N }}}"#,
            Kind::Json,
            &[("N", "1, \"x\": 2")],
        )
        .unwrap_err();
        assert!(e.contains("N") && !e.contains("\"x\""), "{e}");
    }
}
