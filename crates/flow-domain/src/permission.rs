//! Permission names of SPEC §2 and how a set of them grants a required one.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One permission a user can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// System administrator: everything, in every tenant.
    #[serde(rename = "all")]
    All,
    /// Tenant administrator: every permission that concerns its own tenant.
    #[serde(rename = "tenant.all")]
    TenantAll,
    #[serde(rename = "flows.read")]
    #[allow(missing_docs)]
    FlowsRead,
    #[serde(rename = "flows.write")]
    #[allow(missing_docs)]
    FlowsWrite,
    #[serde(rename = "flows.control")]
    #[allow(missing_docs)]
    FlowsControl,
    #[serde(rename = "flows.bulk")]
    #[allow(missing_docs)]
    FlowsBulk,
    #[serde(rename = "templates.read")]
    #[allow(missing_docs)]
    TemplatesRead,
    #[serde(rename = "templates.write")]
    #[allow(missing_docs)]
    TemplatesWrite,
    #[serde(rename = "webhooks.execute")]
    #[allow(missing_docs)]
    WebhooksExecute,
    /// Read executions; `icenter.read` is accepted as an alias on input.
    #[serde(rename = "executions.read", alias = "icenter.read")]
    ExecutionsRead,
    #[serde(rename = "tenant.account.read")]
    #[allow(missing_docs)]
    TenantAccountRead,
    #[serde(rename = "tenant.account.create")]
    #[allow(missing_docs)]
    TenantAccountCreate,
    #[serde(rename = "tenant.account.update")]
    #[allow(missing_docs)]
    TenantAccountUpdate,
    #[serde(rename = "iam.account.delete")]
    #[allow(missing_docs)]
    IamAccountDelete,
}

impl Permission {
    /// Every permission, in a stable order.
    pub const ALL: [Permission; 14] = [
        Permission::All,
        Permission::TenantAll,
        Permission::FlowsRead,
        Permission::FlowsWrite,
        Permission::FlowsControl,
        Permission::FlowsBulk,
        Permission::TemplatesRead,
        Permission::TemplatesWrite,
        Permission::WebhooksExecute,
        Permission::ExecutionsRead,
        Permission::TenantAccountRead,
        Permission::TenantAccountCreate,
        Permission::TenantAccountUpdate,
        Permission::IamAccountDelete,
    ];

    /// The wire name (`flows.read`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Permission::All => "all",
            Permission::TenantAll => "tenant.all",
            Permission::FlowsRead => "flows.read",
            Permission::FlowsWrite => "flows.write",
            Permission::FlowsControl => "flows.control",
            Permission::FlowsBulk => "flows.bulk",
            Permission::TemplatesRead => "templates.read",
            Permission::TemplatesWrite => "templates.write",
            Permission::WebhooksExecute => "webhooks.execute",
            Permission::ExecutionsRead => "executions.read",
            Permission::TenantAccountRead => "tenant.account.read",
            Permission::TenantAccountCreate => "tenant.account.create",
            Permission::TenantAccountUpdate => "tenant.account.update",
            Permission::IamAccountDelete => "iam.account.delete",
        }
    }

    /// The permissions an impersonated end user receives (`POST /impersonate`).
    pub const END_USER: [Permission; 6] = [
        Permission::FlowsRead,
        Permission::FlowsWrite,
        Permission::FlowsControl,
        Permission::TemplatesRead,
        Permission::WebhooksExecute,
        Permission::ExecutionsRead,
    ];
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "icenter.read" {
            return Ok(Permission::ExecutionsRead);
        }
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("Unknown permission \"{s}\"."))
    }
}

/// The permissions a caller holds, with the grant rules of SPEC §2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(Vec<Permission>);

impl PermissionSet {
    /// A set holding `perms` (deduplicated, sorted).
    pub fn new(mut perms: Vec<Permission>) -> Self {
        perms.sort();
        perms.dedup();
        Self(perms)
    }
    /// The permissions as held (no implied ones).
    pub fn as_slice(&self) -> &[Permission] {
        &self.0
    }
    /// `all`: system administrator.
    pub fn is_admin(&self) -> bool {
        self.0.contains(&Permission::All)
    }
    /// `tenant.all`: tenant administrator.
    pub fn is_tenant_admin(&self) -> bool {
        self.0.contains(&Permission::TenantAll)
    }
    /// Whether `required` is granted: admins hold everything; tenant admins hold every
    /// permission but `all`; everyone else holds what is listed.
    pub fn grants(&self, required: Permission) -> bool {
        self.is_admin()
            || (self.is_tenant_admin() && required != Permission::All)
            || self.0.contains(&required)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_alias_is_accepted() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
        assert_eq!("icenter.read".parse::<Permission>(), Ok(Permission::ExecutionsRead));
        assert!("flows.fly".parse::<Permission>().is_err());
    }

    #[test]
    fn grant_rules() {
        let admin = PermissionSet::new(vec![Permission::All]);
        let tenant_admin = PermissionSet::new(vec![Permission::TenantAll]);
        let reader = PermissionSet::new(vec![Permission::FlowsRead]);
        assert!(admin.grants(Permission::All));
        assert!(tenant_admin.grants(Permission::FlowsWrite));
        assert!(!tenant_admin.grants(Permission::All));
        assert!(reader.grants(Permission::FlowsRead));
        assert!(!reader.grants(Permission::FlowsWrite));
    }
}
