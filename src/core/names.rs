//! Kubernetes naming rules, pure: what the API server accepts as a name.

/// Whether `s` is a DNS-1123 label: 1 to 63 lowercase letters, digits and `-`, starting
/// and ending with a letter or digit (namespace names, Service names, the parts of a Job
/// name, and rollgate's application and environment names).
#[must_use]
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::is_dns_label;

    #[test]
    fn dns_labels() {
        for ok in ["a", "app-1", "0", &"x".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "a_b", &"x".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
