//! Auth emulation: RS256 JWTs (RFC 7519/7515/7517) signed with a fixed RSA key, a JWKS,
//! and verification against the virtual clock.
//!
//! The default key is a 2048-bit RSA test key shipped as a PEM fixture
//! (`fixtures/test-rs256.pem`, made with `openssl genpkey -algorithm RSA`): generating RSA
//! keys at run time is slow in debug builds, and a fixed key keeps tokens deterministic.
//! It is a test key; it protects nothing.

use crate::Error;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The fixed test key (PKCS#8 PEM).
pub const TEST_KEY_PEM: &str = include_str!("../fixtures/test-rs256.pem");

/// Claims of tokens the twin issues. Times are Unix seconds of the virtual clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audience.
    pub aud: String,
    /// Issued at (s).
    pub iat: u64,
    /// Expiry (s).
    pub exp: u64,
    /// Space-separated scopes (Okta puts an array in `scp`; we send both).
    #[serde(default)]
    pub scope: String,
    /// Scopes as an array (Okta's `scp`).
    #[serde(default)]
    pub scp: Vec<String>,
    /// Client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Signature, issuer, audience or format is wrong.
    Invalid,
    /// `exp` is at or before the virtual now.
    Expired,
}

/// A signing key pair with its `kid` and the JWKS that publishes it.
pub struct Keys {
    kid: String,
    enc: EncodingKey,
    dec: DecodingKey,
    jwks: Value,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Loads a PKCS#8 PEM RSA private key.
    ///
    /// # Errors
    /// [`Error::Key`] when the PEM is not an RSA private key.
    pub fn from_pem(pem: &str, kid: &str) -> Result<Self, Error> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| Error::Key(e.to_string()))?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let n = b64.encode(key.n().to_bytes_be());
        let e = b64.encode(key.e().to_bytes_be());
        let enc =
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| Error::Key(e.to_string()))?;
        let dec =
            DecodingKey::from_rsa_components(&n, &e).map_err(|e| Error::Key(e.to_string()))?;
        let jwks = json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": n, "e": e}]});
        Ok(Keys {
            kid: kid.to_string(),
            enc,
            dec,
            jwks,
        })
    }

    /// The test key under `kid`.
    ///
    /// # Errors
    /// Only if the shipped fixture were corrupt.
    pub fn test_key(kid: &str) -> Result<Self, Error> {
        Self::from_pem(TEST_KEY_PEM, kid)
    }

    /// The JWKS document (RFC 7517 §5).
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Signs claims as an RS256 JWT with this key's `kid`.
    ///
    /// # Errors
    /// [`Error::Key`] when signing fails.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, Error> {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.enc).map_err(|e| Error::Key(e.to_string()))
    }

    /// Verifies signature, issuer and audience, then expiry against `now_s` (virtual clock).
    ///
    /// # Errors
    /// [`TokenProblem::Expired`] when `exp <= now_s`, else [`TokenProblem::Invalid`].
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now_s: u64,
    ) -> Result<Claims, TokenProblem> {
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.required_spec_claims.clear();
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map_err(|_| TokenProblem::Invalid)?;
        if data.claims.exp <= now_s {
            return Err(TokenProblem::Expired);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: "https://idp".into(),
            sub: "u1".into(),
            aud: "api".into(),
            iat: 0,
            exp,
            scope: "a b".into(),
            scp: vec!["a".into(), "b".into()],
            cid: None,
        }
    }

    #[test]
    fn sign_verify_expire() {
        let k = Keys::test_key("k1").unwrap();
        let t = k.sign(&claims(100)).unwrap();
        assert_eq!(k.verify(&t, "https://idp", "api", 99).unwrap().sub, "u1");
        assert_eq!(
            k.verify(&t, "https://idp", "api", 100),
            Err(TokenProblem::Expired)
        );
        assert_eq!(
            k.verify(&t, "https://other", "api", 1),
            Err(TokenProblem::Invalid)
        );
        let mut bad = t.clone();
        bad.pop();
        assert_eq!(
            k.verify(&bad, "https://idp", "api", 1),
            Err(TokenProblem::Invalid)
        );
        assert_eq!(k.jwks()["keys"][0]["kid"], "k1");
    }
}
