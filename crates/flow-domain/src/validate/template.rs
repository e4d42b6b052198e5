//! The template document of `POST /templates` and `PATCH /templates/{id}`.

use super::flow::{parse_owners, parse_tenant};
use super::graph::check_node_count;
use super::{Errors, as_object, check_depth, opt_object, opt_string, parse_cron, reject_unknown, req_string};
use crate::error::FieldError;
use crate::ids::TenantId;
use crate::limits::Limits;
use crate::model::{FlowType, Owner, TemplateSpec, TemplateStatus};
use serde_json::{Map, Value};

/// Fields a client may write.
pub const WRITABLE_FIELDS: &[&str] =
    &["name", "description", "type", "cron", "graph", "flowSettings", "tags", "status", "owners", "tenant"];
/// Fields a client may send back unchanged; never taken from a body.
pub const READ_ONLY_FIELDS: &[&str] = &["id", "createdAt", "updatedAt"];

/// A parsed template document.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDocument {
    /// The template content.
    pub spec: TemplateSpec,
    /// Owners named in the document.
    pub owners: Option<Vec<Owner>>,
    /// Tenant named in the document.
    pub tenant: Option<Option<TenantId>>,
}

/// Checks a body's top-level keys.
pub fn check_template_keys(body: &Map<String, Value>, errors: &mut Errors) {
    let allowed: Vec<&str> = WRITABLE_FIELDS.iter().chain(READ_ONLY_FIELDS).copied().collect();
    reject_unknown(body, &allowed, "", errors);
}

/// Parses a whole template document within `limits`. The graph must be an object with a
/// `nodes` array (at most `limits.max_nodes` of them); it is validated as a flow graph only on
/// generation, since templates may leave parts open.
///
/// # Errors
/// Every problem found; a document nested deeper than the limit is refused for that alone.
pub fn parse_template_document(doc: &Value, limits: &Limits) -> Result<TemplateDocument, Vec<FieldError>> {
    let mut errors = Errors::default();
    let Some(obj) = as_object(doc, "template", &mut errors) else { return Err(errors.0) };
    if !check_depth(obj, limits, &mut errors) {
        return Err(errors.0);
    }
    check_template_keys(obj, &mut errors);
    let name = req_string(obj, "name", "", "Templates require a name.", &mut errors);
    let description = opt_string(obj, "description", "", &mut errors);
    let flow_type = match obj.get("type") {
        None | Some(Value::Null) => FlowType::default(),
        Some(v) => v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            errors.add("type", "Invalid flow type. Use ordinary or realtime.");
            FlowType::default()
        }),
    };
    let cron = opt_string(obj, "cron", "", &mut errors).filter(|c| !c.trim().is_empty());
    if let Some(expr) = &cron
        && let Err(message) = parse_cron(expr)
    {
        errors.add("cron", message);
    }
    let graph = match obj.get("graph") {
        Some(Value::Object(g)) => {
            if !g.get("nodes").is_some_and(Value::is_array) {
                errors.add("graph.nodes", "nodes must be an array.");
            }
            check_node_count(g, limits, &mut errors);
            Value::Object(g.clone())
        }
        None | Some(Value::Null) => {
            errors.add("graph", "Templates require a graph.");
            Value::Null
        }
        Some(_) => {
            errors.add("graph", "graph must be an object.");
            Value::Null
        }
    };
    let flow_settings = opt_object(obj, "flowSettings", "", &mut errors);
    let tags = match obj.get("tags") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t.as_str() {
                Some(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                _ => {
                    errors.add(format!("tags[{i}]"), "Tags must be non-empty strings.");
                    None
                }
            })
            .collect(),
        Some(_) => {
            errors.add("tags", "tags must be an array of strings.");
            vec![]
        }
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => TemplateStatus::default(),
        Some(Value::String(s)) if s == "draft" || s == "published" => s.parse().unwrap_or_default(),
        Some(_) => {
            errors.add("status", "Template status must be draft or published.");
            TemplateStatus::default()
        }
    };
    let owners = parse_owners(obj.get("owners"), &mut errors);
    let tenant = parse_tenant(obj.get("tenant"), &mut errors);
    let Some(name) = name else { return Err(errors.0) };
    errors.finish(TemplateDocument {
        spec: TemplateSpec { name, description, flow_type, cron, graph, flow_settings, tags, status },
        owners,
        tenant,
    })
}
