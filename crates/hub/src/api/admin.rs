//! The admin console's JSON routes (SPEC Q): users (Q.1), the dashboard (Q.2) and the audit
//! log with its CSV export (Q.3) — thin handlers over `crate::domain::{admin, console}`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::admin::UserView;
use crate::domain::console::{AuditView, SummaryView};
use crate::domain::{admin, console};
use crate::http::error::ApiResult;
use crate::http::extract::{
    AdminUser, ClientInfo, Json, MaybeJson, OptionalJson, Path, QueryPairs, Ready,
};

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub limit: i64,
    pub offset: i64,
    /// Users matching `q` in all.
    pub total: i64,
    pub users: Vec<UserView>,
}

/// `{"user": U}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OneUser {
    pub user: UserView,
}

/// `{"message": …}`: what was done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    pub message: &'static str,
}

/// Answer of `POST /api/v1/admin/users`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserCreated {
    /// `User created successfully`.
    pub message: &'static str,
    pub user_id: String,
}

/// Answer of `POST /api/v1/admin/users/{id}/reset-password`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// `Password reset successfully`.
    pub message: &'static str,
    /// The new password, shown this once: 16 characters.
    pub new_password: String,
}

/// `{"profiles":[]}`: the hub keeps no media profiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profiles {
    /// Always empty.
    #[schema(value_type = Vec<Object>, max_items = 0)]
    pub profiles: [Value; 0],
}

/// Body of `POST /api/v1/admin/users` (checked field by field: 400 `validation_failed` with
/// `field_errors` naming every bad field).
#[derive(Debug, ToSchema)]
pub struct NewUserRequest {
    /// 3–50 letters, digits or underscores.
    pub username: String,
    pub email: String,
    /// At least 8 characters, at most 1024 bytes.
    pub password: String,
    /// `true`/`false` (or `1`/`0`); default `false`.
    pub is_admin: Option<bool>,
}

/// Body of `PUT /api/v1/admin/users/{id}`: any of the fields; absent, null or empty keeps it.
#[derive(Debug, ToSchema)]
pub struct UserChange {
    /// 3–50 letters, digits or underscores.
    pub username: Option<String>,
    pub email: Option<String>,
    /// At least 8 characters, at most 1024 bytes; ends no session.
    pub password: Option<String>,
}

/// Body of `POST /api/v1/admin/users/{id}/set-admin`.
#[derive(Debug, ToSchema)]
pub struct SetAdminRequest {
    pub is_admin: bool,
}

/// A page of audit rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub limit: i64,
    /// Newest first.
    pub logs: Vec<AuditView>,
    pub offset: i64,
    /// Rows matching the filters in all.
    pub total: i64,
}

/// `{"success":true,"data":[…]}` of the dashboard's recent activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityPage {
    /// Newest first.
    pub data: Vec<ActivityEntry>,
    /// Always `true`.
    pub success: bool,
}

/// One line of recent activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityEntry {
    /// The audit row's action or event.
    pub action: String,
    pub actor: String,
    /// `YYYY-MM-DD HH:MM:SS`, UTC.
    pub created_at: String,
    pub id: i64,
    /// What the action was about (a user, request, server, share, setting or login), if known.
    pub target: Option<String>,
}

/// `GET /api/v1/admin/users[?q=&limit=&offset=]` → `{"users":[U],"total","limit","offset"}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users",
    tag = "admin",
    summary = "List and search users (SPEC Q.1)",
    params(
        ("q" = Option<String>, Query, description = "Part of the user name, e-mail or display name"),
        ("limit" = Option<i64>, Query, description = "1–200 (clamped), default 50"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "Default 0")
    ),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, description = "`invalid_query`: `limit`/`offset` not an integer, or a \
            negative `offset`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn list_users(
    Ready(core): Ready,
    _: AdminUser,
    query: QueryPairs,
) -> ApiResult<Json<UserPage>> {
    let (rows, total, limit, offset) = admin::list(
        &core,
        query.get("q"),
        query.get("limit"),
        query.get("offset"),
    )
    .await?;
    Ok(Json(UserPage {
        limit,
        offset,
        total,
        users: rows.iter().map(admin::view).collect(),
    }))
}

/// `GET /api/v1/admin/users/{id}` → `{"user":U}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    summary = "One user",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = OneUser),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn get_user(
    Ready(core): Ready,
    _: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OneUser>> {
    let row = admin::get(&core, &id).await?;
    Ok(Json(OneUser {
        user: admin::view(&row),
    }))
}

/// `POST /api/v1/admin/users` → 201 `{"user_id","message"}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users",
    tag = "admin",
    summary = "Create a user",
    request_body(
        content = NewUserRequest,
        example = json!({"username": "bob", "email": "bob@example.com",
            "password": "a long password", "is_admin": false})
    ),
    responses(
        (status = 201, description = "Created", body = UserCreated,
        links(
            ("get" = (operation_id = "admin_get_user", parameters(("id" = "$response.body#/user_id")))),
            ("update" = (operation_id = "admin_update_user", parameters(("id" = "$response.body#/user_id")))),
            ("delete" = (operation_id = "admin_delete_user", parameters(("id" = "$response.body#/user_id")))),
            ("set_admin" = (operation_id = "admin_set_admin", parameters(("id" = "$response.body#/user_id")))),
            ("disable" = (operation_id = "admin_disable", parameters(("id" = "$response.body#/user_id")))),
            ("enable" = (operation_id = "admin_enable", parameters(("id" = "$response.body#/user_id")))),
            ("profiles" = (operation_id = "admin_profiles", parameters(("id" = "$response.body#/user_id")))),
            ("unlock" = (operation_id = "admin_unlock", parameters(("id" = "$response.body#/user_id")))),
            ("bandwidth" = (operation_id = "bandwidth_of_user", parameters(("id" = "$response.body#/user_id")))),
            ("quota" = (operation_id = "bandwidth_set_quota", parameters(("id" = "$response.body#/user_id")))),
            ("throttle" = (operation_id = "bandwidth_set_throttle", parameters(("id" = "$response.body#/user_id"))))
        )),
        (status = 400, description = "`validation_failed` with `field_errors` (`error` is the \
            first failure, e.g. `Invalid username`, `Email already exists`)", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn create_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    MaybeJson(body): MaybeJson,
) -> ApiResult<(StatusCode, Json<UserCreated>)> {
    let id = admin::create(&core, &current.0.user, &client, body.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            message: "User created successfully",
            user_id: id,
        }),
    ))
}

/// `PUT /api/v1/admin/users/{id}` → `{"message"}`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    summary = "Change a user's name, e-mail address or password",
    params(("id" = String, Path, description = "User id")),
    request_body(
        content = Option<UserChange>,
        description = "Optional: without a body (or without any field) nothing changes",
        example = json!({"email": "robert@example.com"})
    ),
    responses(
        (status = 200, description = "`User updated successfully`", body = Done),
        (status = 400, description = "`validation_failed` with `field_errors`, or \
            `invalid_json` (a body that is not a JSON object)", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn update_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<Option<Value>>,
) -> ApiResult<Json<Done>> {
    admin::update(&core, &current.0.user, &client, &id, body.as_ref()).await?;
    Ok(Json(Done {
        message: "User updated successfully",
    }))
}

/// `DELETE /api/v1/admin/users/{id}` → `{"message"}`.
#[utoipa::path(
    delete,
    path = "/api/v1/admin/users/{id}",
    tag = "admin",
    summary = "Delete a user and everything it owns",
    description = "Its servers, shares, invites, requests, tokens and webhooks go too; its \
        tunnels and relay uses end now.",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "`User deleted successfully`", body = Done),
        (status = 400, description = "`cannot_delete_self` or `last_admin`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn delete_user(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<Done>> {
    admin::delete(&core, &current.0.user, &client, &id).await?;
    Ok(Json(Done {
        message: "User deleted successfully",
    }))
}

/// `POST /api/v1/admin/users/{id}/set-admin` `{"is_admin"}` → `{"message"}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/set-admin",
    tag = "admin",
    summary = "Grant or remove the administrator role",
    params(("id" = String, Path, description = "User id")),
    request_body(content = SetAdminRequest, example = json!({"is_admin": true})),
    responses(
        (status = 200, description = "`User updated successfully`", body = Done),
        (status = 400, description = "`invalid_request` (`is_admin` not a boolean), \
            `cannot_demote_self` or `last_admin`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn set_admin(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
    MaybeJson(body): MaybeJson,
) -> ApiResult<Json<Done>> {
    admin::set_admin(&core, &current.0.user, &client, &id, body.as_ref()).await?;
    Ok(Json(Done {
        message: "User updated successfully",
    }))
}

/// `POST /api/v1/admin/users/{id}/reset-password` → `{"message","new_password"}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/reset-password",
    tag = "admin",
    summary = "Give a user a new random password",
    description = "Every session of the user ends.",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The new password, shown once", body = PasswordReset),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn reset_password(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<PasswordReset>> {
    let password = admin::reset_password(&core, &current.0.user, &client, &id).await?;
    Ok(Json(PasswordReset {
        message: "Password reset successfully",
        new_password: password,
    }))
}

/// `GET /api/v1/admin/users/{id}/profiles` → `{"profiles":[]}` (the hub keeps none).
#[utoipa::path(
    get,
    path = "/api/v1/admin/users/{id}/profiles",
    tag = "admin",
    summary = "A user's media profiles: always none on the hub",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Always an empty list", body = Profiles),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn profiles(
    Ready(core): Ready,
    _: AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Profiles>> {
    admin::get(&core, &id).await?;
    Ok(Json(Profiles { profiles: [] }))
}

/// `POST /api/v1/admin/users/{id}/disable` → `{"user":U}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/disable",
    tag = "admin",
    summary = "Disable a user",
    description = "Every session ends, open relay uses are cut and relay tokens revoked; the \
        user's servers stay reachable.",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user, now disabled", body = OneUser),
        (status = 400, description = "`cannot_disable_self` or `last_admin`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn disable(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<OneUser>> {
    let row = admin::set_disabled(&core, &current.0.user, &client, &id, true).await?;
    Ok(Json(OneUser {
        user: admin::view(&row),
    }))
}

/// `POST /api/v1/admin/users/{id}/enable` → `{"user":U}`.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/enable",
    tag = "admin",
    summary = "Enable a disabled user",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user, now enabled", body = OneUser),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
pub async fn enable(
    Ready(core): Ready,
    current: AdminUser,
    client: ClientInfo,
    Path(id): Path<String>,
) -> ApiResult<Json<OneUser>> {
    let row = admin::set_disabled(&core, &current.0.user, &client, &id, false).await?;
    Ok(Json(OneUser {
        user: admin::view(&row),
    }))
}

/// `POST /api/v1/admin/users/{id}/sign-out` → 204.
#[utoipa::path(
    post,
    path = "/api/v1/admin/users/{id}/sign-out",
    tag = "admin",
    summary = "End every session of a user",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 204, description = "Every token of the user minted before now is refused"),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
        (status = 404, description = "`user_not_found` (`error`: `User not found`)", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("patAuth" = []))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/me/audit-logs",
    tag = "admin",
    summary = "The audit log (SPEC Q.3), as JSON pages or as CSV",
    description = "The whole filtered log as streamed CSV with `Accept: text/csv` or \
        `format=csv`. Also served as `GET /api/v1/admin/audit-logs`.",
    params(
        ("event" = Option<String>, Query, description = "Event name, e.g. `auth.login`"),
        ("user_id" = Option<String>, Query),
        ("resource" = Option<String>, Query),
        ("action" = Option<String>, Query),
        ("success" = Option<String>, Query, description = "`1`/`true` or `0`/`false`"),
        ("from" = Option<i64>, Query, description = "Unix seconds, inclusive"),
        ("to" = Option<i64>, Query, description = "Unix seconds, inclusive; not before `from`"),
        ("limit" = Option<i64>, Query, description = "1–200 (clamped), default 50"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "Default 0"),
        ("format" = Option<String>, Query, description = "`csv` for the CSV export")
    ),
    responses(
        (status = 200, description = "A page of the log, or the CSV export", content(
            (AuditPage = "application/json"),
            (String = "text/csv")
        )),
        (status = 400, description = "`invalid_query` naming the bad filter", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []))
)]
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
    Ok(axum::Json(AuditPage {
        limit,
        logs: rows.iter().map(console::audit_view).collect(),
        offset,
        total,
    })
    .into_response())
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
#[utoipa::path(
    get,
    path = "/api/v1/admin/dashboard/summary",
    tag = "admin",
    summary = "The dashboard's figures (SPEC Q.2)",
    responses(
        (status = 200, description = "The figures", body = SummaryView),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn dashboard_summary(Ready(core): Ready, _: AdminUser) -> ApiResult<Json<SummaryView>> {
    Ok(Json(console::summary_view(&console::summary(&core).await?)))
}

/// `GET /api/v1/admin/dashboard/activity?limit=` → `{"success":true,"data":[…]}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/dashboard/activity",
    tag = "admin",
    summary = "The newest audit rows as recent activity (SPEC Q.2)",
    params(("limit" = Option<i64>, Query, description = "1–100 (clamped), default 20")),
    responses(
        (status = 200, description = "Recent activity", body = ActivityPage),
        (status = 400, description = "`invalid_query`: `limit` is not an integer", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 403, description = "`auth.not_admin`", body = ErrorBody),
    ),
    security(("bearerAuth" = []), ("cookieAuth" = []), ("patAuth" = []))
)]
pub async fn dashboard_activity(
    Ready(core): Ready,
    _: AdminUser,
    query: QueryPairs,
) -> ApiResult<Json<ActivityPage>> {
    let entries = console::activity(&core, query.get("limit")).await?;
    let data = entries
        .into_iter()
        .map(|a| ActivityEntry {
            action: a.action,
            actor: a.actor,
            created_at: a.created_at,
            id: a.id,
            target: a.target,
        })
        .collect();
    Ok(Json(ActivityPage {
        data,
        success: true,
    }))
}
