//! The admin console's JSON routes (SPEC Q): users (Q.1), the dashboard (Q.2) and the audit
//! log with its CSV export (Q.3) — thin handlers over `crate::domain::{admin, console}`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::domain::{admin, console};
use crate::http::error::ApiResult;
use crate::http::extract::{AdminUser, ClientInfo, Json, MaybeJson, Path, QueryPairs, Ready};

/// `GET /api/v1/admin/users[?q=&limit=&offset=]` → `{"users":[U],"total","limit","offset"}`.
pub async fn list_users(
    Ready(core): Ready,
    _: AdminUser,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let (rows, total, limit, offset) = admin::list(
        &core,
        query.get("q"),
        query.get("limit"),
        query.get("offset"),
    )
    .await?;
    let users: Vec<Value> = rows.iter().map(admin::view).collect();
    Ok(Json(
        json!({"users": users, "total": total, "limit": limit, "offset": offset}),
    ))
}

/// `GET /api/v1/admin/users/{id}` → `{"user":U}`.
pub async fn get_user(
    Ready(core): Ready,
    _: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = admin::get(&core, &id).await?;
    Ok(Json(json!({ "user": admin::view(&row) })))
}

/// `POST /api/v1/admin/users` → 201 `{"user_id","message"}`.
pub async fn create_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = admin::create(&core, &current.0.user, &client, body.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user_id": id, "message": "User created successfully"})),
    ))
}

/// `PUT /api/v1/admin/users/{id}` → `{"message"}`.
pub async fn update_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Value>> {
    admin::update(&core, &current.0.user, &client, &id, body.as_ref()).await?;
    Ok(Json(json!({"message": "User updated successfully"})))
}

/// `DELETE /api/v1/admin/users/{id}` → `{"message"}`.
pub async fn delete_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin::delete(&core, &current.0.user, &client, &id).await?;
    Ok(Json(json!({"message": "User deleted successfully"})))
}

/// `POST /api/v1/admin/users/{id}/set-admin` `{"is_admin"}` → `{"message"}`.
pub async fn set_admin(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Value>> {
    admin::set_admin(&core, &current.0.user, &client, &id, body.as_ref()).await?;
    Ok(Json(json!({"message": "User updated successfully"})))
}

/// `POST /api/v1/admin/users/{id}/reset-password` → `{"message","new_password"}`.
pub async fn reset_password(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let password = admin::reset_password(&core, &current.0.user, &client, &id).await?;
    Ok(Json(
        json!({"message": "Password reset successfully", "new_password": password}),
    ))
}

/// `GET /api/v1/admin/users/{id}/profiles` → `{"profiles":[]}` (the hub keeps none).
pub async fn profiles(
    Ready(core): Ready,
    _: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin::get(&core, &id).await?;
    Ok(Json(json!({ "profiles": [] })))
}

/// `POST /api/v1/admin/users/{id}/disable` → `{"user":U}`.
pub async fn disable(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = admin::set_disabled(&core, &current.0.user, &client, &id, true).await?;
    Ok(Json(json!({ "user": admin::view(&row) })))
}

/// `POST /api/v1/admin/users/{id}/enable` → `{"user":U}`.
pub async fn enable(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = admin::set_disabled(&core, &current.0.user, &client, &id, false).await?;
    Ok(Json(json!({ "user": admin::view(&row) })))
}

/// `POST /api/v1/admin/users/{id}/sign-out` → 204.
pub async fn sign_out(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin::sign_out(&core, &current.0.user, &client, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit filters and page of a query.
fn audit_query(query: &QueryPairs) -> ApiResult<(crate::store::AuditFilter, i64, i64)> {
    let filter = console::audit_filter(|name| query.get(name).map(str::to_owned))?;
    let (limit, offset) = admin::page(query.get("limit"), query.get("offset"), 50, 200)?;
    Ok((filter, limit, offset))
}

/// `GET /api/v1/me/audit-logs` (admin): `{"logs","total","limit","offset"}`, or the whole
/// filtered log as streamed CSV with `Accept: text/csv` or `?format=csv`.
pub async fn audit_logs(
    Ready(core): Ready,
    _: AdminUser,
    query: QueryPairs,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (filter, limit, offset) = audit_query(&query)?;
    let wants_csv = query.get("format") == Some("csv")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv"));
    if wants_csv {
        return Ok(csv_export(core, filter));
    }
    let (rows, total) = console::audit_page(&core, &filter, limit, offset).await?;
    let logs: Vec<Value> = rows.iter().map(console::audit_view).collect();
    Ok(
        axum::Json(json!({"logs": logs, "total": total, "limit": limit, "offset": offset}))
            .into_response(),
    )
}

/// Streams the filtered audit log as CSV, one keyset page of rows at a time, so memory stays
/// bounded whatever the size of the log.
fn csv_export(core: crate::domain::Core, filter: crate::store::AuditFilter) -> Response {
    let header_line = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(console::CSV_HEADER.as_bytes()))
    });
    let pages = futures_util::stream::unfold(Some(None), move |cursor| {
        let core = core.clone();
        let filter = filter.clone();
        async move {
            let before = cursor?;
            match console::audit_export_page(&core, &filter, before).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = rows.last().map(|r| r.id);
                    let full = i64::try_from(rows.len()).unwrap_or(0) == console::EXPORT_PAGE;
                    let text: String = rows.iter().map(console::csv_line).collect();
                    Some((Ok(bytes::Bytes::from(text)), full.then_some(next)))
                }
                Err(err) => {
                    tracing::warn!(error = %err, "audit export stopped");
                    Some((Err(std::io::Error::other("audit export failed")), None))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(futures_util::StreamExt::chain(
        header_line,
        pages,
    )));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit-log.csv\""),
    );
    response
}

/// `GET /api/v1/admin/dashboard/summary`.
pub async fn dashboard_summary(Ready(core): Ready, _: AdminUser) -> ApiResult<Json<Value>> {
    Ok(Json(console::summary_view(&console::summary(&core).await?)))
}

/// `GET /api/v1/admin/dashboard/activity?limit=` → `{"success":true,"data":[…]}`.
pub async fn dashboard_activity(
    Ready(core): Ready,
    _: AdminUser,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let entries = console::activity(&core, query.get("limit")).await?;
    let data: Vec<Value> = entries
        .iter()
        .map(|a| {
            json!({"id": a.id, "action": a.action, "actor": a.actor, "target": a.target,
                   "created_at": a.created_at})
        })
        .collect();
    Ok(Json(json!({"success": true, "data": data})))
}
