//! List queries: paging, filters, sort and search, parsed from query parameters (SPEC §1, §4, §8).

use crate::error::{FieldError, ServiceError, ServiceResult};
use crate::ids::{FlowId, TemplateId, TenantId, parse_uuid};
use crate::model::{ExecutionStatus, FlowStatus, FlowType, TemplateStatus};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// Which resources a caller may list (the list form of `Actor::can_see`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// System administrators: everything.
    All,
    /// Tenant administrators: everything of their tenant.
    Tenant(TenantId),
    /// Everyone else: resources of `tenant` listing one of `owner_ids` as owner.
    Owners {
        /// Must equal the resource's tenant (`None` matches tenant-less resources).
        tenant: Option<TenantId>,
        /// The caller's user id and tenant id.
        owner_ids: Vec<Uuid>,
    },
}

/// A page request: `page[size]` in 1..=100 (default 10), `page[number]` >= 1 (default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page.
    pub size: u32,
    /// 1-based page number.
    pub number: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { size: 10, number: 1 }
    }
}

impl PageRequest {
    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        u64::from(self.number - 1) * u64::from(self.size)
    }
}

/// One page of results and the total count for the same filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items match the filter in all.
    pub total: u64,
}

impl<T> Page<T> {
    /// Maps the items, keeping the total.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), total: self.total }
    }
}

/// Sortable fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// Creation time (the default).
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Name.
    Name,
}

/// Sort order; ties are always broken by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The field.
    pub field: SortField,
    /// Descending when true.
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self { field: SortField::CreatedAt, descending: false }
    }
}

/// `GET /flows` filters.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowQuery {
    /// What the caller may see.
    pub visibility: Visibility,
    /// `filter[status]`.
    pub status: Option<FlowStatus>,
    /// `filter[type]`.
    pub flow_type: Option<FlowType>,
    /// `filter[fromTemplate]`.
    pub from_template: Option<TemplateId>,
    /// `filter[user]` (admins only): flows listing this owner id.
    pub owner: Option<Uuid>,
    /// Case-insensitive substring of name or description.
    pub search: Option<String>,
    /// Order.
    pub sort: Sort,
    /// Page.
    pub page: PageRequest,
}

/// `GET /templates` filters.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateQuery {
    /// What the caller may see.
    pub visibility: Visibility,
    /// `filter[status]`.
    pub status: Option<TemplateStatus>,
    /// `filter[type]`.
    pub flow_type: Option<FlowType>,
    /// `filter[user]` (admins only).
    pub owner: Option<Uuid>,
    /// `tags=a,b`: templates with any of them, plus untagged ones.
    pub tags: Vec<String>,
    /// Case-insensitive substring of name or description.
    pub search: Option<String>,
    /// Order.
    pub sort: Sort,
    /// Page.
    pub page: PageRequest,
}

/// `GET /api/users` filters.
#[derive(Debug, Clone, PartialEq)]
pub struct UserQuery {
    /// `None` for all tenants (admins), else only this tenant's users.
    pub tenant: Option<Option<TenantId>>,
    /// Exact username.
    pub username: Option<String>,
    /// Page.
    pub page: PageRequest,
}

/// `GET /executions` filters; always newest first (by `createdAt`, ties by id).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionQuery {
    /// What the caller may see (as for flows: the execution's tenant and copied owners).
    pub visibility: Visibility,
    /// `filter[flowId]`.
    pub flow_id: Option<FlowId>,
    /// `filter[status]`.
    pub status: Option<ExecutionStatus>,
    /// `filter[from]`: created at or after.
    pub from: Option<DateTime<Utc>>,
    /// `filter[to]`: created strictly before (a bare date means the end of that day).
    pub to: Option<DateTime<Utc>>,
    /// Only executions in which this node (step id) ran (the step-logs route).
    pub step: Option<String>,
    /// Page.
    pub page: PageRequest,
}

/// Raw query parameters.
pub type Params = HashMap<String, String>;

/// Collects query-parameter problems; all are reported at once.
#[derive(Debug, Default)]
pub struct ParamErrors(Vec<FieldError>);

impl ParamErrors {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::at(field, message));
    }
    /// Records a problem with parameter `field`.
    pub fn push_public(&mut self, field: &str, message: impl Into<String>) {
        self.push(field, message);
    }
    fn finish<T>(self, value: T) -> ServiceResult<T> {
        if self.0.is_empty() { Ok(value) } else { Err(ServiceError::Validation(self.0)) }
    }
    /// `Ok(value)` when no problem was recorded, else a `Validation` error listing them.
    ///
    /// # Errors
    /// `Validation`.
    pub fn into_result<T>(self, value: T) -> ServiceResult<T> {
        self.finish(value)
    }
}

/// Parses `page[size]` and `page[number]`.
pub fn parse_page(params: &Params, errors: &mut ParamErrors) -> PageRequest {
    let mut page = PageRequest::default();
    if let Some(raw) = params.get("page[size]") {
        match raw.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => page.size = n,
            _ => errors.push("page[size]", "page[size] must be an integer from 1 to 100."),
        }
    }
    if let Some(raw) = params.get("page[number]") {
        match raw.parse::<u32>() {
            Ok(n) if n >= 1 => page.number = n,
            _ => errors.push("page[number]", "page[number] must be an integer of at least 1."),
        }
    }
    page
}

fn parse_sort(params: &Params, errors: &mut ParamErrors) -> Sort {
    let Some(raw) = params.get("sort") else { return Sort::default() };
    let (descending, name) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw.as_str()),
    };
    let field = match name {
        "createdAt" => SortField::CreatedAt,
        "updatedAt" => SortField::UpdatedAt,
        "name" => SortField::Name,
        _ => {
            errors.push(
                "sort",
                "Invalid sort parameter. Use createdAt, updatedAt or name, with an optional - prefix.",
            );
            SortField::CreatedAt
        }
    };
    Sort { field, descending }
}

fn parse_search(params: &Params) -> Option<String> {
    params.get("search").map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn parse_type(params: &Params, errors: &mut ParamErrors) -> Option<FlowType> {
    let raw = params.get("filter[type]")?;
    raw.parse().map_err(|_| errors.push("filter[type]", "Invalid filter[type] parameter")).ok()
}

fn parse_owner_filter(
    params: &Params,
    is_admin: bool,
    errors: &mut ParamErrors,
) -> ServiceResult<Option<Uuid>> {
    let Some(raw) = params.get("filter[user]") else { return Ok(None) };
    if !is_admin {
        return Err(ServiceError::Forbidden("Filtering by user is only available to admins".into()));
    }
    match parse_uuid(raw) {
        Ok(id) => Ok(Some(id)),
        Err(_) => {
            errors.push("filter[user]", "Invalid id");
            Ok(None)
        }
    }
}

/// Parses the `GET /flows` parameters for a caller with `visibility`.
///
/// # Errors
/// `Validation` listing every bad parameter; `Forbidden` for `filter[user]` from a non-admin.
pub fn parse_flow_query(params: &Params, visibility: Visibility) -> ServiceResult<FlowQuery> {
    let mut errors = ParamErrors::default();
    let owner = parse_owner_filter(params, visibility == Visibility::All, &mut errors)?;
    let status = params.get("filter[status]").and_then(|raw| {
        let parsed = match raw.as_str() {
            "1" => Some(FlowStatus::Active),
            "0" => Some(FlowStatus::Inactive),
            other => other.parse().ok(),
        };
        if parsed.is_none() {
            errors.push("filter[status]", "Invalid filter[status] parameter");
        }
        parsed
    });
    let from_template = params.get("filter[fromTemplate]").and_then(|raw| {
        raw.parse::<TemplateId>().map_err(|_| errors.push("filter[fromTemplate]", "Invalid id")).ok()
    });
    let query = FlowQuery {
        visibility,
        status,
        flow_type: parse_type(params, &mut errors),
        from_template,
        owner,
        search: parse_search(params),
        sort: parse_sort(params, &mut errors),
        page: parse_page(params, &mut errors),
    };
    errors.finish(query)
}

/// Parses the `GET /templates` parameters for a caller with `visibility`.
///
/// # Errors
/// As [`parse_flow_query`].
pub fn parse_template_query(params: &Params, visibility: Visibility) -> ServiceResult<TemplateQuery> {
    let mut errors = ParamErrors::default();
    let owner = parse_owner_filter(params, visibility == Visibility::All, &mut errors)?;
    let status = params.get("filter[status]").and_then(|raw| {
        raw.parse().map_err(|_| errors.push("filter[status]", "Invalid filter[status] parameter")).ok()
    });
    let tags = params
        .get("tags")
        .map(|raw| raw.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let query = TemplateQuery {
        visibility,
        status,
        flow_type: parse_type(params, &mut errors),
        owner,
        tags,
        search: parse_search(params),
        sort: parse_sort(params, &mut errors),
        page: parse_page(params, &mut errors),
    };
    errors.finish(query)
}

/// Parses a `filter[from]`/`filter[to]` bound: RFC 3339, or `YYYY-MM-DD` meaning that day's
/// midnight UTC (`end_of_day`: the next day's, so `to` includes the whole day).
fn parse_bound(
    params: &Params,
    key: &str,
    end_of_day: bool,
    errors: &mut ParamErrors,
) -> Option<DateTime<Utc>> {
    let raw = params.get(key)?;
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok();
    let day = if end_of_day { day.and_then(|d| d.succ_opt()) } else { day };
    let at = day.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
    if at.is_none() {
        errors.push(key, format!("Invalid {key} parameter: use RFC 3339 or YYYY-MM-DD."));
    }
    at
}

/// Parses the `GET /executions` parameters for a caller with `visibility`.
///
/// # Errors
/// `Validation` listing every bad parameter.
pub fn parse_execution_query(params: &Params, visibility: Visibility) -> ServiceResult<ExecutionQuery> {
    let mut errors = ParamErrors::default();
    let flow_id = params
        .get("filter[flowId]")
        .and_then(|raw| raw.parse::<FlowId>().map_err(|_| errors.push("filter[flowId]", "Invalid id")).ok());
    let status = params.get("filter[status]").and_then(|raw| {
        raw.parse().map_err(|_| errors.push("filter[status]", "Invalid filter[status] parameter")).ok()
    });
    let query = ExecutionQuery {
        visibility,
        flow_id,
        status,
        from: parse_bound(params, "filter[from]", false, &mut errors),
        to: parse_bound(params, "filter[to]", true, &mut errors),
        step: None,
        page: parse_page(params, &mut errors),
    };
    errors.finish(query)
}

/// Parses the `GET /api/users` parameters; `tenant` is the scope decided by the policy.
///
/// # Errors
/// `Validation` for bad paging.
pub fn parse_user_query(params: &Params, tenant: Option<Option<TenantId>>) -> ServiceResult<UserQuery> {
    let mut errors = ParamErrors::default();
    let query = UserQuery {
        tenant,
        username: params.get("username").cloned(),
        page: parse_page(params, &mut errors),
    };
    errors.finish(query)
}

/// Parses a path id, answering `400 Invalid id` when malformed.
///
/// # Errors
/// `InvalidId`.
pub fn parse_id<T: std::str::FromStr>(raw: &str) -> ServiceResult<T> {
    raw.parse().map_err(|_| ServiceError::InvalidId)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn reports_every_bad_parameter() {
        let p =
            params(&[("page[size]", "0"), ("page[number]", "x"), ("sort", "size"), ("filter[status]", "on")]);
        let Err(ServiceError::Validation(errors)) = parse_flow_query(&p, Visibility::All) else {
            panic!("expected validation errors")
        };
        assert_eq!(errors.len(), 4);
    }

    #[test]
    fn filter_user_is_admin_only() {
        let p = params(&[("filter[user]", &uuid::Uuid::now_v7().to_string())]);
        let scoped = Visibility::Owners { tenant: None, owner_ids: vec![] };
        assert!(matches!(parse_flow_query(&p, scoped), Err(ServiceError::Forbidden(_))));
        assert!(parse_flow_query(&p, Visibility::All).is_ok());
    }

    #[test]
    fn execution_query_filters_and_bounds() {
        let flow = FlowId::new().to_string();
        let p = params(&[
            ("filter[flowId]", &flow),
            ("filter[status]", "running"),
            ("filter[from]", "2026-05-01"),
            ("filter[to]", "2026-05-02"),
            ("page[size]", "5"),
        ]);
        let q = parse_execution_query(&p, Visibility::All).expect("valid");
        assert_eq!(q.flow_id.map(|f| f.to_string()), Some(flow));
        assert_eq!(q.status, Some(ExecutionStatus::Running));
        assert_eq!(q.from.map(|t| t.to_rfc3339()), Some("2026-05-01T00:00:00+00:00".into()));
        assert_eq!(q.to.map(|t| t.to_rfc3339()), Some("2026-05-03T00:00:00+00:00".into()));
        assert_eq!(q.page.size, 5);
        let q =
            parse_execution_query(&params(&[("filter[to]", "2026-05-02T10:00:00+02:00")]), Visibility::All)
                .expect("valid");
        assert_eq!(q.to.map(|t| t.to_rfc3339()), Some("2026-05-02T08:00:00+00:00".into()));
    }

    #[test]
    fn execution_query_reports_every_bad_parameter() {
        let p = params(&[
            ("filter[flowId]", "nope"),
            ("filter[status]", "done"),
            ("filter[from]", "yesterday"),
            ("filter[to]", "2026-13-01"),
        ]);
        let Err(ServiceError::Validation(errors)) = parse_execution_query(&p, Visibility::All) else {
            panic!("expected validation errors")
        };
        assert_eq!(errors.len(), 4);
    }

    #[test]
    fn status_aliases() {
        let q = parse_flow_query(&params(&[("filter[status]", "1"), ("sort", "-name")]), Visibility::All)
            .expect("valid");
        assert_eq!(q.status, Some(FlowStatus::Active));
        assert_eq!(q.sort, Sort { field: SortField::Name, descending: true });
    }
}
