//! The people side of the domain: emails, passwords, names, roles, time zones.
use std::fmt;

use serde::{Deserialize, Serialize};

/// An email address, trimmed and lower-cased: two spellings of one address are one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Email, String> {
        let normalized = Self::normalize(raw);
        if normalized.is_empty() {
            return Err("must not be empty".into());
        }
        if normalized.chars().count() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if normalized
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("must not contain spaces or control characters".into());
        }
        match normalized.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..") =>
            {
                Ok(Email(normalized))
            }
            _ => Err("is not an email address (expected name@domain)".into()),
        }
    }

    /// The lookup key for any input, valid or not: trimmed and lower-cased. Used where an answer
    /// must not depend on whether the input is a well-formed address (login).
    pub fn normalize(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password as chosen by a person: 8 to 1024 characters of any Unicode, kept exactly as
/// typed (no trimming, no normalization), so what is compared is exactly what was typed.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: &str) -> Result<Password, String> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        if n > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(********)")
    }
}

/// A person's display name: trimmed, at most 100 characters, may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<DisplayName, String> {
        let name = raw.trim();
        if name.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(DisplayName(name.to_string()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// What a user may do: `user` manages their own data, `admin` also the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Result<Role, String> {
        match raw {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(format!("`{other}` is not a role (user or admin)")),
        }
    }
}

/// An IANA time zone name such as `Europe/Berlin`; dates are booked in the user's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub fn parse(raw: &str) -> Result<TimeZone, String> {
        raw.trim()
            .parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| {
                format!(
                    "`{}` is not an IANA time zone such as Europe/Berlin",
                    raw.trim()
                )
            })
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }
}

/// A BCP 47 language tag such as `en`, `en-GB` or `pt-BR` (shape-checked, not looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale(String);

impl Locale {
    pub fn parse(raw: &str) -> Result<Locale, String> {
        let tag = raw.trim();
        let ok = !tag.is_empty()
            && tag.len() <= 35
            && tag.split('-').all(|part| {
                (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
            })
            && tag.split('-').next().is_some_and(|l| {
                (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic())
            });
        if ok {
            Ok(Locale(tag.to_string()))
        } else {
            Err(format!("`{tag}` is not a language tag such as en or en-GB"))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_case_folded() {
        assert_eq!(
            Email::parse("  Ada@Example.ORG ").unwrap().as_str(),
            "ada@example.org"
        );
        assert!(Email::parse("no-at-sign").is_err());
        assert!(Email::parse("a@b@c").is_err());
        assert!(Email::parse("a b@c.d").is_err());
        assert!(Email::parse("@c.d").is_err());
        assert!(Email::parse("").is_err());
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("пароль12").is_ok()); // 8 characters, 14 bytes
        assert!(Password::parse(&"é".repeat(1024)).is_ok());
        assert!(Password::parse(&"a".repeat(1025)).is_err());
        // kept exactly: no trimming
        assert_eq!(
            Password::parse(" spaced out ").unwrap().expose(),
            " spaced out "
        );
    }

    #[test]
    fn time_zones_and_locales() {
        assert_eq!(
            TimeZone::parse("Europe/Berlin").unwrap().name(),
            "Europe/Berlin"
        );
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(Locale::parse("en-GB").is_ok());
        assert!(Locale::parse("english please").is_err());
    }
}
