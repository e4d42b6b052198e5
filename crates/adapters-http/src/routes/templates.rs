//! Templates: CRUD and generation of a flow from a published template. Every template is
//! answered as a [`PublicTemplate`] and every generated flow as a [`PublicFlow`] (without the
//! webhook secret).

use crate::envelope::{Data, List, Message};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, JsonBody, OptionalJsonBody, PathParams, QueryParams};
use crate::public_flow::{PublicFlow, PublicTemplate};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flow_domain::model::{Flow, Template, TemplateSpec};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(generate_flow))
}

/// Lists the templates the caller may see (`templates.read`).
#[utoipa::path(get, path = "/templates", tag = "templates", security(("bearerAuth" = [])),
    params(
        ("page[size]" = Option<u32>, Query, description = "1..=100, default 10"),
        ("page[number]" = Option<u32>, Query, description = ">= 1, default 1"),
        ("filter[status]" = Option<String>, Query, description = "draft, published, 0, 1"),
        ("filter[type]" = Option<String>, Query, description = "ordinary or realtime"),
        ("filter[user]" = Option<String>, Query, description = "Owner id (admins only)"),
        ("tags" = Option<String>, Query, description = "Comma-separated; any of them (untagged always listed)"),
        ("sort" = Option<String>, Query, description = "createdAt, updatedAt or name; `-` for descending"),
        ("search" = Option<String>, Query, description = "Substring of name or description"),
    ),
    responses(
        (status = 200, description = "One page of templates", body = List<Template>),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn list_templates(
    State(state): State<AppState>,
    Authed(actor): Authed,
    QueryParams(params): QueryParams,
) -> Result<Json<List<PublicTemplate>>, ApiError> {
    let page = PublicTemplate::page(state.templates.list(&actor, &params).await?);
    Ok(Json(List::from_page(page, &params)))
}

/// Creates a template (`templates.write`).
#[utoipa::path(post, path = "/templates", tag = "templates", security(("bearerAuth" = [])),
    request_body = TemplateSpec,
    responses(
        (status = 201, description = "Created", body = Data<Template>),
        (status = 400, description = "Invalid template", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn create_template(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Data<PublicTemplate>>), ApiError> {
    let template = PublicTemplate::from(state.templates.create(&actor, &body).await?);
    Ok((StatusCode::CREATED, Json(Data::new(template))))
}

/// One template (`templates.read`).
#[utoipa::path(get, path = "/templates/{id}", tag = "templates", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 200, description = "The template", body = Data<Template>),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "Template not found", body = ErrorBody),
    ))]
pub async fn get_template(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<PublicTemplate>>, ApiError> {
    Ok(Json(Data::new(PublicTemplate::from(state.templates.get(&actor, &id).await?))))
}

/// Changes a template (`templates.write`); a published one accepts only a change of status.
#[utoipa::path(patch, path = "/templates/{id}", tag = "templates", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Template id")),
    request_body(content = Object, description = "Fields of the template to replace"),
    responses(
        (status = 200, description = "The updated template", body = Data<Template>),
        (status = 400, description = "Invalid template", body = ErrorBody),
        (status = 404, description = "Template not found", body = ErrorBody),
        (status = 409, description = "Template is published", body = ErrorBody),
    ))]
pub async fn update_template(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Data<PublicTemplate>>, ApiError> {
    Ok(Json(Data::new(PublicTemplate::from(state.templates.update(&actor, &id, &body).await?))))
}

/// Deletes a draft template (`templates.write`).
#[utoipa::path(delete, path = "/templates/{id}", tag = "templates", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 404, description = "Template not found", body = ErrorBody),
        (status = 409, description = "Template is published", body = ErrorBody),
    ))]
pub async fn delete_template(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Message>, ApiError> {
    state.templates.delete(&actor, &id).await?;
    Ok(Json(Message::new("Template was successfully deleted")))
}

/// Generates an inactive flow from a published template (`flows.write`): the body (optional)
/// is deep-merged into the template to fill its variable parts.
#[utoipa::path(post, path = "/templates/{id}/generate", tag = "templates",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Template id")),
    request_body(content = Object, description = "name, description, type, cron, graph, flowSettings to merge"),
    responses(
        (status = 201, description = "The generated flow", body = Data<Flow>),
        (status = 400, description = "The resulting flow is invalid, with every problem", body = ErrorBody),
        (status = 404, description = "Template not found", body = ErrorBody),
        (status = 409, description = "Template is not published", body = ErrorBody),
    ))]
pub async fn generate_flow(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody,
) -> Result<(StatusCode, Json<Data<PublicFlow>>), ApiError> {
    let flow = PublicFlow::from(state.templates.generate(&actor, &id, &body).await?);
    Ok((StatusCode::CREATED, Json(Data::new(flow))))
}
