//! Which names are secrets, and how a query string loses their values.

use std::fmt;

/// What the log replaces a secret with.
pub const REDACTED: &str = "[REDACTED]";

/// Headers whose values never reach a log line, by default.
pub const DEFAULT_REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Query parameters whose values never reach a log line, by default.
pub const DEFAULT_REDACTED_QUERY_PARAMS: &[&str] = &[
    "access_token",
    "token",
    "password",
    "secret",
    "api_key",
    "key",
];

/// The names whose values are replaced by `[REDACTED]`: in the `path` of
/// request lines (query parameters) and in any event or span field of the
/// same name (`authorization`, `x_api_key`, `password`, ...), wherever an
/// application logs them.
///
/// Names match without regard to case, and `-` matches `_`.
///
/// ```
/// use observe_log::Redaction;
///
/// let redaction = Redaction::new().header("x-vk-signature").query_param("sig");
/// # let _ = redaction;
/// ```
#[derive(Debug, Clone)]
pub struct Redaction {
    names: Vec<Box<str>>,
    /// Exact secret texts replaced wherever they appear.
    values: Vec<Box<str>>,
    /// Bit `n` is set when some name is `n` bytes long: most field names
    /// are ruled out by one test.
    lengths: u64,
}

impl Default for Redaction {
    fn default() -> Self {
        Self::new()
    }
}

impl Redaction {
    /// The default headers and query parameters.
    pub fn new() -> Self {
        DEFAULT_REDACTED_HEADERS
            .iter()
            .chain(DEFAULT_REDACTED_QUERY_PARAMS)
            .fold(Self::none(), |redaction, name| redaction.name(name))
    }

    /// Nothing redacted; add names with [`header`](Self::header) and
    /// [`query_param`](Self::query_param).
    pub fn none() -> Self {
        Self {
            names: Vec::new(),
            values: Vec::new(),
            lengths: 0,
        }
    }

    /// Also redacts the header `name`.
    pub fn header(self, name: &str) -> Self {
        self.name(name)
    }

    /// Also replaces `secret` (a token, a password the service holds)
    /// wherever it appears in a logged message or string value, whatever
    /// the field: an upstream that echoes a token in an error text does not
    /// put it in the log. Texts shorter than 4 bytes are ignored: they would
    /// redact ordinary words.
    pub fn value(mut self, secret: &str) -> Self {
        if secret.len() >= 4 && !self.values.iter().any(|known| &**known == secret) {
            self.values.push(secret.into());
        }
        self
    }

    /// Whether secret values are configured.
    pub(crate) fn has_values(&self) -> bool {
        !self.values.is_empty()
    }

    /// `text` with every configured secret value replaced.
    pub(crate) fn scrub<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let mut text = std::borrow::Cow::Borrowed(text);
        for secret in &self.values {
            if text.contains(&**secret) {
                text = std::borrow::Cow::Owned(text.replace(&**secret, REDACTED));
            }
        }
        text
    }

    /// Also redacts the query parameter `name`.
    pub fn query_param(self, name: &str) -> Self {
        self.name(name)
    }

    fn name(mut self, name: &str) -> Self {
        let name: String = name
            .trim()
            .chars()
            .map(|c| {
                if c == '-' {
                    '_'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        if !name.is_empty() && !self.names.iter().any(|known| **known == *name) {
            self.lengths |= length_bit(name.len());
            self.names.push(name.into_boxed_str());
        }
        self
    }

    /// Whether a field or parameter called `name` holds a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        if self.lengths & length_bit(name.len()) == 0 {
            return false;
        }
        self.names
            .iter()
            .any(|secret| same_name(secret, name.as_bytes()))
    }

    /// Writes `query` with the values of secret parameters replaced.
    pub(crate) fn query_into(&self, out: &mut impl fmt::Write, query: &str) -> fmt::Result {
        for (index, pair) in query.split('&').enumerate() {
            if index > 0 {
                out.write_char('&')?;
            }
            match pair.split_once('=') {
                Some((name, _)) if self.is_secret_encoded(name) => {
                    out.write_str(name)?;
                    out.write_char('=')?;
                    out.write_str(REDACTED)?;
                }
                _ => out.write_str(pair)?,
            }
        }
        Ok(())
    }

    /// Whether a query name, maybe percent-encoded (`%74oken`), is a secret.
    fn is_secret_encoded(&self, name: &str) -> bool {
        if !name.contains('%') && !name.contains('+') {
            return self.is_secret(name);
        }
        // Form encoding: `+` is a space, then `%XX` escapes.
        let spaced = name.replace('+', " ");
        let decoded = percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy();
        self.is_secret(decoded.trim())
    }
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

fn same_name(secret: &str, name: &[u8]) -> bool {
    secret.len() == name.len()
        && secret.bytes().zip(name).all(|(secret, &byte)| {
            let byte = if byte == b'-' {
                b'_'
            } else {
                byte.to_ascii_lowercase()
            };
            secret == byte
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(path: &str) -> String {
        let mut out = String::new();
        match path.split_once('?') {
            Some((path, query)) => {
                out.push_str(path);
                out.push('?');
                let _ = Redaction::new().query_into(&mut out, query);
            }
            None => out.push_str(path),
        }
        out
    }

    #[test]
    fn default_names_are_secret_in_any_case_and_spelling() {
        let redaction = Redaction::new();
        for name in [
            "authorization",
            "Authorization",
            "proxy_authorization",
            "cookie",
            "Set-Cookie",
            "x_api_key",
            "X-API-KEY",
            "access_token",
            "token",
            "password",
            "secret",
            "api_key",
            "key",
        ] {
            assert!(redaction.is_secret(name), "{name}");
        }
        for name in [
            "method",
            "path",
            "user_agent",
            "keys",
            "tokens",
            "",
            "monkey",
        ] {
            assert!(!redaction.is_secret(name), "{name}");
        }
        assert!(!Redaction::none().is_secret("token"));
        assert!(Redaction::none().header("X-Sig").is_secret("x_sig"));
    }

    #[test]
    fn secret_query_values_are_replaced() {
        assert_eq!(path("/a/b"), "/a/b");
        assert_eq!(path("/a?"), "/a?");
        assert_eq!(
            path("/a?token=abc&x=1&Password=p&key"),
            "/a?token=[REDACTED]&x=1&Password=[REDACTED]&key"
        );
        assert_eq!(
            path("/a?access_token=s3cr3t&access_token=again"),
            "/a?access_token=[REDACTED]&access_token=[REDACTED]"
        );
        assert_eq!(path("/a?%74oken=s3cr3t"), "/a?%74oken=[REDACTED]");
        assert_eq!(
            path("/a?api%5Fkey=s3cr3t&x=%"),
            "/a?api%5Fkey=[REDACTED]&x=%"
        );
        assert_eq!(path("/a?tok%=1&%="), "/a?tok%=1&%=");
    }
}

#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::Redaction;

    proptest! {
        /// Any casing of a secret header or parameter name, and `-` or `_`
        /// between its words, is a secret; an unrelated name is not.
        #[test]
        fn secret_names_in_any_case_and_either_separator(
            name in prop::sample::select(
                super::DEFAULT_REDACTED_HEADERS
                    .iter()
                    .chain(super::DEFAULT_REDACTED_QUERY_PARAMS)
                    .copied()
                    .collect::<Vec<_>>(),
            ),
            upper in prop::collection::vec(any::<bool>(), 20),
            underscores in any::<bool>(),
            other in "[a-z]{1,6}_(id|name|count)",
        ) {
            let redaction = Redaction::new();
            let written: String = name
                .chars()
                .zip(upper.iter().cycle())
                .map(|(char, upper)| match char {
                    '-' | '_' if underscores => '_',
                    '-' | '_' => '-',
                    char if *upper => char.to_ascii_uppercase(),
                    char => char,
                })
                .collect();
            prop_assert!(redaction.is_secret(&written), "{}", written);
            prop_assert!(!redaction.is_secret(&other), "{}", other);
        }

        /// A secret parameter's value never survives, however the rest of
        /// the query looks; other pairs are kept as they were.
        #[test]
        fn secret_values_never_reach_the_output(
            before in "[a-z0-9=&%+]{0,30}",
            secret in "[A-Za-z0-9]{8,20}",
            after in "[a-z0-9=&%+]{0,30}",
            name in prop::sample::select(vec!["token", "access_token", "password", "secret", "api_key", "%74oken"]),
        ) {
            let query = format!("{before}&{name}={secret}&{after}");
            let mut out = String::new();
            Redaction::new().query_into(&mut out, &query).unwrap();
            prop_assert!(!out.contains(&format!("{name}={secret}")), "{}", out);
            prop_assert_eq!(out.split('&').count(), query.split('&').count());
            for (given, written) in query.split('&').zip(out.split('&')) {
                let secret_pair = given.split_once('=').is_some_and(|(key, _)| Redaction::new().is_secret_encoded(key));
                if !secret_pair {
                    prop_assert_eq!(given, written);
                }
            }
        }
    }
}
