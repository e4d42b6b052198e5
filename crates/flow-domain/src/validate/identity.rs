//! Documents of the identity routes: login, users, tenants, impersonation.

use super::{Errors, as_object, opt_bool, opt_string, reject_unknown, req_string};
use crate::error::FieldError;
use crate::ids::TenantId;
use crate::model::UserStatus;
use crate::permission::Permission;
use serde_json::{Map, Value};

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest username accepted.
pub const MAX_USERNAME_LEN: usize = 255;

/// `POST /login`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginInput {
    /// Login name.
    pub username: String,
    /// Clear-text password (never stored).
    pub password: String,
}

/// `POST /api/users`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUserInput {
    /// Login name.
    pub username: String,
    /// Clear-text password; required when `can_login`.
    pub password: Option<String>,
    /// Given name.
    pub firstname: Option<String>,
    /// Family name.
    pub lastname: Option<String>,
    /// Initial state (default `ACTIVE`).
    pub status: UserStatus,
    /// Tenant (forced to the caller's for non-admins).
    pub tenant: Option<TenantId>,
    /// Permissions to grant.
    pub permissions: Vec<Permission>,
    /// Whether the account can log in (default true).
    pub can_login: bool,
}

/// `PATCH /api/users/{id}`: every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    /// New given name (`Some(None)` clears).
    pub firstname: Option<Option<String>>,
    /// New family name.
    pub lastname: Option<Option<String>>,
    /// New password.
    pub password: Option<String>,
    /// New state.
    pub status: Option<UserStatus>,
    /// New permissions (replace).
    pub permissions: Option<Vec<Permission>>,
}

impl UserPatch {
    /// Whether the patch changes only the caller's own profile fields (names, password).
    pub fn is_self_service(&self) -> bool {
        self.status.is_none() && self.permissions.is_none()
    }
}

fn object<'a>(
    doc: &'a Value,
    what: &str,
    allowed: &[&str],
    errors: &mut Errors,
) -> Option<&'a Map<String, Value>> {
    let obj = as_object(doc, what, errors)?;
    reject_unknown(obj, allowed, "", errors);
    Some(obj)
}

/// Parses a login body.
///
/// # Errors
/// Missing username or password, unknown fields.
pub fn parse_login(doc: &Value) -> Result<LoginInput, Vec<FieldError>> {
    let mut errors = Errors::default();
    let Some(obj) = object(doc, "login request", &["username", "password"], &mut errors) else {
        return Err(errors.0);
    };
    let username = req_string(obj, "username", "", "username is required.", &mut errors);
    let password = req_string(obj, "password", "", "password is required.", &mut errors);
    match (username, password) {
        (Some(username), Some(password)) => errors.finish(LoginInput { username, password }),
        _ => Err(errors.0),
    }
}

fn parse_permissions(value: Option<&Value>, errors: &mut Errors) -> Option<Vec<Permission>> {
    let items = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.add("permissions", "permissions must be an array of strings.");
            return None;
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str().map(str::parse::<Permission>) {
            Some(Ok(p)) => out.push(p),
            Some(Err(message)) => errors.add(format!("permissions[{i}]"), message),
            None => errors.add(format!("permissions[{i}]"), "Permissions must be strings."),
        }
    }
    Some(out)
}

fn parse_status(value: Option<&Value>, errors: &mut Errors) -> Option<UserStatus> {
    match value {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_str().and_then(|s| s.parse().ok()) {
            Some(status) => Some(status),
            None => {
                errors.add("status", "status must be ACTIVE, PENDING or DISABLED.");
                None
            }
        },
    }
}

fn check_password(password: &Option<String>, errors: &mut Errors) {
    if let Some(p) = password
        && p.chars().count() < MIN_PASSWORD_LEN
    {
        errors.add("password", format!("password must have at least {MIN_PASSWORD_LEN} characters."));
    }
}

/// Parses a new-user body.
///
/// # Errors
/// Every problem found.
pub fn parse_new_user(doc: &Value) -> Result<NewUserInput, Vec<FieldError>> {
    const FIELDS: &[&str] =
        &["username", "password", "firstname", "lastname", "status", "tenant", "permissions", "canLogin"];
    let mut errors = Errors::default();
    let Some(obj) = object(doc, "user", FIELDS, &mut errors) else { return Err(errors.0) };
    let username = req_string(obj, "username", "", "username is required.", &mut errors);
    if username.as_ref().is_some_and(|u| u.chars().count() > MAX_USERNAME_LEN) {
        errors.add("username", format!("username must have at most {MAX_USERNAME_LEN} characters."));
    }
    let can_login = opt_bool(obj, "canLogin", "", &mut errors).unwrap_or(true);
    let password = opt_string(obj, "password", "", &mut errors);
    if can_login && password.is_none() {
        errors.add("password", "password is required for users who can log in.");
    }
    check_password(&password, &mut errors);
    let tenant = super::flow::parse_tenant(obj.get("tenant"), &mut errors).flatten();
    let input = NewUserInput {
        username: username.unwrap_or_default().trim().to_string(),
        password,
        firstname: opt_string(obj, "firstname", "", &mut errors),
        lastname: opt_string(obj, "lastname", "", &mut errors),
        status: parse_status(obj.get("status"), &mut errors).unwrap_or_default(),
        tenant,
        permissions: parse_permissions(obj.get("permissions"), &mut errors).unwrap_or_default(),
        can_login,
    };
    errors.finish(input)
}

/// Parses a user patch body.
///
/// # Errors
/// Every problem found.
pub fn parse_user_patch(doc: &Value) -> Result<UserPatch, Vec<FieldError>> {
    const FIELDS: &[&str] = &["firstname", "lastname", "password", "status", "permissions"];
    let mut errors = Errors::default();
    let Some(obj) = object(doc, "user", FIELDS, &mut errors) else { return Err(errors.0) };
    let optional_name = |key: &str, errors: &mut Errors| -> Option<Option<String>> {
        obj.contains_key(key).then(|| opt_string(obj, key, "", errors))
    };
    let firstname = optional_name("firstname", &mut errors);
    let lastname = optional_name("lastname", &mut errors);
    let password = opt_string(obj, "password", "", &mut errors);
    check_password(&password, &mut errors);
    let patch = UserPatch {
        firstname,
        lastname,
        password,
        status: parse_status(obj.get("status"), &mut errors),
        permissions: parse_permissions(obj.get("permissions"), &mut errors),
    };
    errors.finish(patch)
}

/// Parses `POST /api/tenants` (`{name}`).
///
/// # Errors
/// Missing name, unknown fields.
pub fn parse_new_tenant(doc: &Value) -> Result<String, Vec<FieldError>> {
    let mut errors = Errors::default();
    let Some(obj) = object(doc, "tenant", &["name"], &mut errors) else { return Err(errors.0) };
    let name = req_string(obj, "name", "", "name is required.", &mut errors);
    match name {
        Some(name) => errors.finish(name.trim().to_string()),
        None => Err(errors.0),
    }
}

/// Parses `POST /impersonate` (`{username}`).
///
/// # Errors
/// Missing username, unknown fields.
pub fn parse_impersonation(doc: &Value) -> Result<String, Vec<FieldError>> {
    let mut errors = Errors::default();
    let Some(obj) = object(doc, "impersonation request", &["username"], &mut errors) else {
        return Err(errors.0);
    };
    let username = req_string(obj, "username", "", "username is required.", &mut errors);
    match username {
        Some(u) => errors.finish(u.trim().to_string()),
        None => Err(errors.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_user_rules() {
        let errs = parse_new_user(&json!({"permissions": ["flows.fly"], "password": "short", "x": 1}))
            .expect_err("invalid");
        let fields: Vec<_> = errs.iter().filter_map(|e| e.field.as_deref()).collect();
        for f in ["username", "password", "permissions[0]", "x"] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        let ok = parse_new_user(
            &json!({"username": "a@b.c", "password": "longenough", "permissions": ["icenter.read"]}),
        )
        .expect("valid");
        assert_eq!(ok.permissions, vec![Permission::ExecutionsRead]);
        assert!(ok.can_login);
    }
}
