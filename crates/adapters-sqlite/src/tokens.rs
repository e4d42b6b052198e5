//! `TokenRepository`: bearer tokens stored as hashes, with sliding expiry and revocation. Every
//! write is one group-commit job (see `write`).

use crate::error::{port_error, unique_as};
use crate::rows::TokenUserRow;
use crate::sql::millis;
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::ids::TokenId;
use flow_domain::model::{AccessToken, User};
use flow_domain::ports::TokenRepository;

#[async_trait]
impl TokenRepository for SqliteStore {
    async fn insert(&self, token: &AccessToken) -> Result<(), PortError> {
        let query = sqlx::query(
            "INSERT INTO tokens (id, user_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token.id.to_string())
        .bind(token.user_id.to_string())
        .bind(token.hash.clone())
        .bind(millis(token.created_at))
        .bind(millis(token.expires_at));
        self.write(false, move |tx| {
            Box::pin(async move { query.execute(&mut *tx).await.map(|_| ()).map_err(unique_as("token")) })
        })
        .await
    }

    async fn find_valid(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(AccessToken, User)>, PortError> {
        let row = sqlx::query_as::<_, TokenUserRow>(
            "SELECT t.id AS token_id, t.hash AS token_hash, t.created_at AS token_created_at, \
             t.expires_at AS token_expires_at, u.id, u.username, u.firstname, u.lastname, u.status, \
             u.tenant, u.permissions, u.can_login, u.password_hash, u.created_at, u.updated_at \
             FROM tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.hash = ? AND t.revoked = 0 AND t.expires_at > ?",
        )
        .bind(hash.to_string())
        .bind(millis(now))
        .fetch_optional(&self.reader)
        .await
        .map_err(port_error)?;
        row.map(TokenUserRow::into_parts).transpose()
    }

    async fn extend(&self, id: TokenId, expires_at: DateTime<Utc>) -> Result<(), PortError> {
        let query = sqlx::query("UPDATE tokens SET expires_at = ? WHERE id = ? AND revoked = 0")
            .bind(millis(expires_at))
            .bind(id.to_string());
        self.write(false, move |tx| {
            Box::pin(async move { query.execute(&mut *tx).await.map(|_| ()).map_err(port_error) })
        })
        .await
    }

    async fn revoke(&self, id: TokenId) -> Result<(), PortError> {
        let query = sqlx::query("UPDATE tokens SET revoked = 1 WHERE id = ?").bind(id.to_string());
        self.write(false, move |tx| {
            Box::pin(async move { query.execute(&mut *tx).await.map(|_| ()).map_err(port_error) })
        })
        .await
    }
}
