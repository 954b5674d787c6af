//! `select` queries: `field=value` terms matched against metadata that is
//! either `k=v` tokens or a flat JSON object.

use crate::error::{Error, Result};

/// One `field=value` term of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub(crate) field: String,
    pub(crate) value: String,
}

/// Parses `field=value` terms (at least one; `field` non-empty, `value`
/// possibly empty) separated as `k=v` metadata is: by whitespace, `;` or
/// `,` (so `role=api,port=8080` is two terms, as it would be in metadata).
pub(crate) fn parse_query(query: &str) -> Result<Vec<Term>> {
    let bad = |why: &str| {
        Error::InvalidArgument(format!(
            "select query {query:?} {why}: give field=value terms separated by whitespace, \
             ';' or ',', e.g. \"role=api port=8080\""
        ))
    };
    let mut terms = Vec::new();
    for tok in query.split(is_separator).filter(|t| !t.is_empty()) {
        match tok.split_once('=') {
            Some((field, value)) if !field.is_empty() => terms.push(Term {
                field: field.to_owned(),
                value: value.to_owned(),
            }),
            Some(_) => return Err(bad(&format!("has a term {tok:?} without a field"))),
            None => return Err(bad(&format!("has a term {tok:?} without '='"))),
        }
    }
    if terms.is_empty() {
        return Err(bad("is empty"));
    }
    Ok(terms)
}

/// Whether `metadata` has every term's field with exactly its value.
pub(crate) fn matches(terms: &[Term], metadata: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(metadata) else {
        return false;
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        // Values stay as their JSON text, so a number matches as written
        // (`1e3` is not `1000`, `1.0` is not `1`, a 30-digit integer keeps
        // its digits). A duplicate key: the last one counts.
        let Ok(obj) = serde_json::from_str::<
            std::collections::HashMap<String, &serde_json::value::RawValue>,
        >(text) else {
            return false;
        };
        terms.iter().all(|t| {
            obj.get(&t.field).is_some_and(|raw| {
                let j = raw.get();
                if j.starts_with('"') {
                    // A string is compared without its quotes and escapes.
                    serde_json::from_str::<String>(j).is_ok_and(|s| s == t.value)
                } else {
                    // `8081`, `true`, `null`, `["a"]`: the JSON text itself.
                    j == t.value
                }
            })
        })
    } else {
        terms
            .iter()
            .all(|t| kv_tokens(text).any(|(k, v)| k == t.field && v == t.value))
    }
}

/// The `k=v` tokens of `text`, separated by whitespace, `;` or `,`; tokens
/// without `=` or with an empty key are skipped.
fn kv_tokens(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.split(is_separator)
        .filter_map(|tok| tok.split_once('='))
        .filter(|(k, _)| !k.is_empty())
}

/// What separates `k=v` tokens, in metadata and in queries.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ';' || c == ','
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<Term> {
        parse_query(s).unwrap()
    }

    #[test]
    fn queries_that_are_not_field_value_terms_are_refused() {
        for bad in ["", "   ", "role", "role=api port", "=api", "a=b =c"] {
            let e = parse_query(bad).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidArgument(m) if m.contains("field=value")),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(
            q(" role=api\tport= "),
            vec![
                Term {
                    field: "role".into(),
                    value: "api".into()
                },
                Term {
                    field: "port".into(),
                    value: String::new()
                }
            ]
        );
    }

    #[test]
    fn kv_metadata_matches_every_term_with_any_separator() {
        let m = b"role=api port=8081 worker=1";
        assert!(matches(&q("role=api"), m));
        assert!(matches(&q("role=api worker=1"), m));
        assert!(!matches(&q("role=api worker=2"), m));
        assert!(!matches(&q("role=ap"), m));
        assert!(matches(&q("b=2 a=1"), b"a=1;b=2"));
        assert!(matches(&q("b=2"), b"a=1, b=2"));
        // A query separates its terms as metadata separates tokens.
        assert!(matches(&q("a=1,b=2"), b"a=1 b=2"));
        assert!(matches(&q("a=1;b=2"), b"b=2,a=1"));
        assert!(!matches(&q("a=1,b=3"), b"a=1 b=2"));
        assert!(
            matches(&q("url=x=y"), b"url=x=y"),
            "the value keeps later '='"
        );
        assert!(!matches(&q("role=api"), b"just text"));
        assert!(!matches(&q("role=api"), b""));
        assert!(!matches(&q("role=api"), &[0xff, b'r', b'=']));
    }

    #[test]
    fn json_metadata_compares_values_as_json_text() {
        let m = br#"{"role":"api","port":8081,"tls":true,"tags":["a"],"none":null}"#;
        assert!(matches(&q("role=api port=8081"), m));
        assert!(matches(&q("tls=true none=null"), m));
        assert!(matches(&q(r#"tags=["a"]"#), m));
        assert!(
            !matches(&q(r#"role="api""#), m),
            "strings lose their quotes"
        );
        assert!(!matches(&q("port=8082"), m));
        // Numbers match as written, whatever serde would print for them.
        let n = br#"{"e":1e3,"f":1.0,"big":123456789012345678901234567890}"#;
        assert!(matches(&q("e=1e3 f=1.0"), n));
        assert!(!matches(&q("e=1000"), n) && !matches(&q("f=1"), n));
        assert!(matches(&q("big=123456789012345678901234567890"), n));
        // Escapes in strings are decoded; the last of two equal keys counts.
        assert!(matches(&q("s=a\"b"), br#"{"s":"a\"b"}"#));
        assert!(matches(&q("d=2"), br#"{"d":1,"d":2}"#));
        assert!(
            !matches(&q("role=api"), br#"{"role": "api""#),
            "broken json"
        );
        assert!(
            !matches(&q("role=api"), br#"["role=api"]"#),
            "not an object"
        );
    }
}
