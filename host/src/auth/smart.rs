//! SMART on FHIR system scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html)
//! in an SSO token's `scope` claim: `system/Practitioner.read` (v1), `system/Observation.rs`
//! (v2), `system/*.read`. They only narrow: a token still needs a hub role to be let in, and
//! its system scopes, when it carries any, name the FHIR resource types and interactions it
//! may use. A token without them (and every API key) is limited by its role alone.
//! `patient/` and `user/` scopes name a launch context the hub has no use for: ignored.

/// The FHIR resource types and interactions a token's system scopes allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmartScopes(Vec<Scope>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Scope {
    /// A resource type, or `*`.
    resource: String,
    read: bool,
    search: bool,
}

/// What a FHIR interaction does, as scopes name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Search,
}

impl SmartScopes {
    /// The system scopes in a `scope` claim; `None` when it has none. A system scope the
    /// hub cannot read still limits the token: it grants nothing.
    pub fn of_claim(scope: &str) -> Option<Self> {
        let system: Vec<&str> = scope
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("system/"))
            .collect();
        if system.is_empty() {
            return None;
        }
        let scopes = system
            .into_iter()
            .filter_map(|s| {
                let (resource, permissions) = s.split_once('.')?;
                let (read, search) = match permissions {
                    "read" | "*" => (true, true),
                    "write" => (false, false),
                    v2 if !v2.is_empty() && v2.chars().all(|c| "cruds".contains(c)) => {
                        (v2.contains('r'), v2.contains('s'))
                    }
                    _ => return None,
                };
                Some(Scope {
                    resource: resource.to_string(),
                    read,
                    search,
                })
            })
            .collect();
        Some(SmartScopes(scopes))
    }

    pub fn allow(&self, resource: &str, access: Access) -> bool {
        self.0.iter().any(|s| {
            (s.resource == "*" || s.resource == resource)
                && match access {
                    Access::Read => s.read,
                    Access::Search => s.search,
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_scopes_allow_the_types_and_interactions_they_name_and_nothing_else() {
        let scopes = SmartScopes::of_claim("openid system/Practitioner.read system/Observation.s patient/*.read")
            .expect("system scopes");
        assert!(scopes.allow("Practitioner", Access::Read));
        assert!(scopes.allow("Practitioner", Access::Search));
        assert!(scopes.allow("Observation", Access::Search));
        assert!(!scopes.allow("Observation", Access::Read));
        assert!(!scopes.allow("Device", Access::Search));
        let all = SmartScopes::of_claim("system/*.rs").unwrap();
        assert!(all.allow("Device", Access::Read) && all.allow("Device", Access::Search));
        assert!(
            !SmartScopes::of_claim("system/*.write")
                .unwrap()
                .allow("Device", Access::Read)
        );
        assert_eq!(SmartScopes::of_claim("openid profile patient/*.read"), None);
        let unreadable = SmartScopes::of_claim("system/Practitioner.bogus").expect("still a system scope");
        assert!(
            !unreadable.allow("Practitioner", Access::Read),
            "an unreadable scope grants nothing"
        );
    }
}
