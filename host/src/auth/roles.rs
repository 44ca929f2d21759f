//! Roles, permissions and the authenticated caller.
//!
//! | role         | may                                                              |
//! |--------------|------------------------------------------------------------------|
//! | `viewer`     | read status: connectors, runs, logs, rejects, plugins            |
//! | `operator`   | viewer + enable, disable and run connectors                      |
//! | `integrator` | viewer + install plugins, create, change, upgrade connectors     |
//! | `admin`      | everything above + delete connectors, API keys, the audit log    |
//!
//! Decrypted personal data needs the separate `pii:read` permission, granted to a caller
//! explicitly (an API key's `permissions`, or `pii:read` in the token's roles claim), never
//! implied by a role: least privilege for the data that matters most.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Integrator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Integrator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Integrator => "integrator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    fn grants(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Operate => matches!(self, Role::Operator | Role::Admin),
            Permission::Integrate => matches!(self, Role::Integrator | Role::Admin),
            Permission::Admin => self == Role::Admin,
            Permission::PiiRead => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read status.
    Read,
    /// Enable, disable, run.
    Operate,
    /// Install plugins; create, change, upgrade, roll back connectors.
    Integrate,
    /// Delete connectors, manage API keys, read the audit log.
    Admin,
    /// Read decrypted personal data.
    PiiRead,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Operate => "operate",
            Permission::Integrate => "integrate",
            Permission::Admin => "admin",
            Permission::PiiRead => PII_READ,
        }
    }
}

/// The explicit grant for decrypted personal data.
pub const PII_READ: &str = "pii:read";

/// A grant on top of a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum Grant {
    /// Decrypted personal data.
    #[serde(rename = "pii:read")]
    PiiRead,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::PiiRead => PII_READ,
        }
    }
}

/// Who is calling: an API key or an SSO subject, with a role and extra grants.
#[derive(Clone, Debug)]
pub struct Caller {
    /// `api-key:<name>` or `sso:<subject>`: what the audit log records.
    pub actor: String,
    pub role: Role,
    pub pii_read: bool,
    /// The SMART system scopes of an SSO token that carries any: the FHIR resource types
    /// and interactions it is limited to (`None`: its role alone decides).
    pub smart: Option<super::smart::SmartScopes>,
}

impl Caller {
    pub fn may(&self, permission: Permission) -> bool {
        match permission {
            Permission::PiiRead => self.pii_read,
            other => self.role.grants(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_table_says() {
        let caller = |role| Caller {
            actor: "t".into(),
            role,
            pii_read: false,
            smart: None,
        };
        assert!(caller(Role::Viewer).may(Permission::Read));
        assert!(!caller(Role::Viewer).may(Permission::Operate));
        assert!(caller(Role::Operator).may(Permission::Operate));
        assert!(!caller(Role::Operator).may(Permission::Integrate));
        assert!(caller(Role::Integrator).may(Permission::Integrate));
        assert!(!caller(Role::Integrator).may(Permission::Admin));
        assert!(caller(Role::Admin).may(Permission::Admin));
        assert!(
            !caller(Role::Admin).may(Permission::PiiRead),
            "pii:read is never implied"
        );
    }
}
