//! Claiming a server with the code it shows (SPEC C.2) over `crate::domain::claims`.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::html;
use super::layout::*;
use super::session::{CsrfForm, Viewer};
use crate::domain::DomainError;
use crate::http::extract::ClientInfo;

#[derive(Template)]
#[template(path = "claim.html")]
struct ClaimPage {
    layout: Layout,
    code: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "claimed.html")]
struct ClaimedPage {
    layout: Layout,
    server: ServerView,
}

/// `GET /app/claim-server`.
pub async fn claim_page(viewer: Viewer) -> Response {
    let page = ClaimPage {
        layout: Layout::for_viewer("Claim a server", &viewer, "claim"),
        code: String::new(),
        error: None,
    };
    html(StatusCode::OK, page.render())
}

#[derive(Debug, Deserialize)]
pub struct ClaimForm {
    #[serde(default)]
    pub code: String,
}

/// `POST /app/claim-server`: redeems the code (any case, with or without the dash).
pub async fn claim(
    viewer: Viewer,
    client: ClientInfo,
    CsrfForm(form): CsrfForm<ClaimForm>,
) -> Response {
    let typed = form.code.trim().to_owned();
    let outcome = if typed.is_empty() {
        Err(DomainError::Unprocessable {
            code: "claim_code_required",
            message: String::new(),
        })
    } else {
        crate::domain::claims::redeem_code(&viewer.core, &viewer.user, client, &typed).await
    };
    let server_id = match outcome {
        Ok(server_id) => server_id,
        Err(err) => {
            let (status, body) = err.parts();
            let message = match body.error.as_str() {
                "CLAIM_CODE_NOT_FOUND" => format!(
                    "No server is waiting with the code “{typed}”. Check the code your server shows (8 letters and digits, like K7QX-M2P9)."
                ),
                "CLAIM_CODE_EXPIRED" => "This code has expired (codes last 10 minutes). Ask your server for a new one: run the pairing again.".to_owned(),
                "CLAIM_CODE_ALREADY_CLAIMED" => "This code has already been used to pair a server. Each code works once.".to_owned(),
                _ if body.code.as_deref() == Some("claim_code_required") => "Enter the code your server shows.".to_owned(),
                _ => "The code could not be checked right now. Try again in a moment.".to_owned(),
            };
            let page = ClaimPage {
                layout: Layout::for_viewer("Claim a server", &viewer, "claim"),
                code: typed,
                error: Some(message),
            };
            return html(status, page.render());
        }
    };
    match crate::domain::servers::owned_server(&viewer.core, &viewer.user.id, &server_id).await {
        Ok(row) => {
            let page = ClaimedPage {
                layout: Layout::for_viewer("Server paired", &viewer, "claim"),
                server: row.into(),
            };
            html(StatusCode::OK, page.render())
        }
        Err(DomainError::NotFound(_)) => Redirect::to("/app/servers").into_response(),
        Err(err) => api_error_page(&viewer, &err),
    }
}
