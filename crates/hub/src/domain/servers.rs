//! Servers in the directory: ownership checks and the owner's actions on a server.

use super::{Core, DomainError, DomainResult};
use crate::store::ServerRow;

/// The server `server_id` if `user_id` owns it: 404 `server.not_found`, 403 `server.not_owned`.
pub async fn owned_server(core: &Core, user_id: &str, server_id: &str) -> DomainResult<ServerRow> {
    owner_check(core.store.server_by_id(server_id).await?, user_id)
}

/// 404 `server.not_found` for no server, 403 `server.not_owned` for another user's.
pub fn owner_check(server: Option<ServerRow>, user_id: &str) -> DomainResult<ServerRow> {
    let server = server.ok_or(DomainError::NotFound("server.not_found"))?;
    if server.user_id != user_id {
        return Err(DomainError::Forbidden("server.not_owned"));
    }
    Ok(server)
}
