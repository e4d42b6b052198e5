//! The success envelopes: `{data, meta: {}}` for one resource, `{data: [...], meta: {page,
//! perPage, total, totalPages}}` for lists, per-item results of bulk requests, and the few bare
//! answers (`{msg}`, `{token, id}`, `{loggedOut}`).

use crate::error::{ApiError, ErrorEntry};
use flow_domain::error::ServiceResult;
use flow_domain::model::FlowStatus;
use flow_domain::query::{Page, PageRequest, ParamErrors, Params, parse_page};
use serde::Serialize;
use utoipa::ToSchema;

/// The empty `meta` of a single resource.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct EmptyMeta {}

/// `{data, meta: {}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    /// The resource.
    pub data: T,
    /// Always `{}`.
    pub meta: EmptyMeta,
}

impl<T> Data<T> {
    /// Wraps `data`.
    pub fn new(data: T) -> Self {
        Self { data, meta: EmptyMeta {} }
    }
}

/// Paging of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
    /// Items matching the filter in all.
    pub total: u64,
    /// `ceil(total / perPage)`.
    pub total_pages: u64,
}

impl ListMeta {
    /// The meta of page `page` of `total` items.
    pub fn new(page: PageRequest, total: u64) -> Self {
        let per_page = u64::from(page.size.max(1));
        Self { page: page.number, per_page: page.size, total, total_pages: total.div_ceil(per_page) }
    }
}

/// `{data: [...], meta: ListMeta}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Paging.
    pub meta: ListMeta,
}

impl<T> List<T> {
    /// A list answer for `page`, fetched with `params` (already validated by the service).
    pub fn from_page(page: Page<T>, params: &Params) -> Self {
        let request = parse_page(params, &mut ParamErrors::default());
        Self { meta: ListMeta::new(request, page.total), data: page.items }
    }
}

/// `{errors: [...]}` standing for one failed item of a bulk request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemErrors {
    /// What went wrong with this item.
    pub errors: Vec<ErrorEntry>,
}

/// One item of a bulk answer: the resource, or its errors.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Item<T> {
    /// The item succeeded.
    Ok(T),
    /// The item failed.
    Failed(ItemErrors),
}

impl<T> Item<T> {
    /// The rendering of one outcome; failures go through the error table.
    pub fn from_result(result: ServiceResult<T>) -> Self {
        match result {
            Ok(value) => Item::Ok(value),
            Err(err) => Item::Failed(ItemErrors { errors: ApiError::from(err).into_entries() }),
        }
    }
}

/// A flow's id and status after a start or stop.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowState {
    /// The flow id.
    pub id: String,
    /// Its status now (`starting` or `stopping`).
    pub status: FlowStatus,
}

/// One outcome of a multiple start/stop: `{data: {id, status}}` or `{errors: [...flowId]}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ControlItem {
    /// The flow was started or stopped.
    Ok(Data<FlowState>),
    /// It was not; every entry names the flow id.
    Failed(ItemErrors),
}

impl ControlItem {
    /// The rendering of the outcome for the raw id `flow_id`.
    pub fn from_outcome(flow_id: String, result: ServiceResult<flow_domain::model::Flow>) -> Self {
        match result {
            Ok(flow) => {
                ControlItem::Ok(Data::new(FlowState { id: flow.id.to_string(), status: flow.status }))
            }
            Err(err) => {
                let mut errors = ApiError::from(err).into_entries();
                for entry in &mut errors {
                    entry.flow_id = Some(flow_id.clone());
                }
                ControlItem::Failed(ItemErrors { errors })
            }
        }
    }
}

/// `{msg}`: the answer of a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// What happened.
    pub msg: String,
}

impl Message {
    /// `{msg}` with `msg`.
    pub fn new(msg: impl Into<String>) -> Self {
        Self { msg: msg.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_domain::error::ServiceError;
    use serde_json::json;

    #[test]
    fn list_meta_rounds_pages_up() {
        let meta = ListMeta::new(PageRequest { size: 10, number: 2 }, 21);
        assert_eq!(
            serde_json::to_value(meta).ok(),
            Some(json!({"page": 2, "perPage": 10, "total": 21, "totalPages": 3}))
        );
        assert_eq!(ListMeta::new(PageRequest::default(), 0).total_pages, 0);
        assert_eq!(ListMeta::new(PageRequest::default(), 10).total_pages, 1);
    }

    #[test]
    fn list_reads_paging_from_params() {
        let params: Params = [("page[size]".to_string(), "5".to_string())].into_iter().collect();
        let list = List::from_page(Page { items: vec![1, 2], total: 7 }, &params);
        assert_eq!(list.meta, ListMeta { page: 1, per_page: 5, total: 7, total_pages: 2 });
    }

    #[test]
    fn items_render_values_or_errors() {
        let ok: Item<u8> = Item::from_result(Ok(1));
        let failed: Item<u8> = Item::from_result(Err(ServiceError::Conflict("busy".into())));
        assert_eq!(serde_json::to_value(ok).ok(), Some(json!(1)));
        assert_eq!(
            serde_json::to_value(failed).ok(),
            Some(json!({"errors": [{"message": "busy", "code": 409}]}))
        );
    }

    #[test]
    fn control_failures_name_the_flow() {
        let item = ControlItem::from_outcome("nope".into(), Err(ServiceError::InvalidId));
        assert_eq!(
            serde_json::to_value(item).ok(),
            Some(json!({"errors": [{"message": "Invalid id", "code": 400, "flowId": "nope"}]}))
        );
        let wrapped = Data::new(vec![1]);
        assert_eq!(serde_json::to_value(wrapped).ok(), Some(json!({"data": [1], "meta": {}})));
    }
}
