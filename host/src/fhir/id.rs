//! FHIR ids (`[A-Za-z0-9.-]{1,64}`) for things the hub keys by an outside system's code: a
//! sensor's id, a facility's code. A code that is a FHIR id is its own; any other is `hex-`
//! and its bytes in hex, so every code has an id and every id leads back to its code.

/// The FHIR id of `key`.
pub fn of(key: &str) -> String {
    let valid = !key.is_empty()
        && key.len() <= 64
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !key.starts_with("hex-");
    if valid {
        key.to_string()
    } else {
        format!("hex-{}", hex::encode(key))
    }
}

/// The key a FHIR id stands for ([`of`] undone).
pub fn key(id: &str) -> String {
    (id.strip_prefix("hex-"))
        .and_then(|h| hex::decode(h).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_no_fhir_id_round_trips_through_hex() {
        for key_given in ["dev-0001", "sensor_7/ward 3", "hex-looking", "", "3578015"] {
            let id = of(key_given);
            assert!(
                id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
                "{id}"
            );
            assert_eq!(key(&id), key_given);
        }
    }
}
