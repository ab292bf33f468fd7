//! The Okta-style OIDC twin over HTTP: discovery, client credentials and password grants,
//! JWKS-verifiable RS256 tokens, userinfo; an expired JWT and a missing scope are refused.

use crate::support::{advance, client, serve};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

#[tokio::test]
async fn discovery_token_jwks_userinfo_and_expiry() {
    let (_twin, server) = serve("okta").await;
    let (c, url) = (client(), server.url());
    let disco: Value = c
        .get(format!(
            "{url}/oauth2/default/.well-known/openid-configuration"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disco["issuer"], format!("{url}/oauth2/default"));
    let token_url = disco["token_endpoint"].as_str().unwrap().to_string();
    let tok: Value = c
        .post(&token_url)
        .basic_auth("twin-client", Some("twin-secret"))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.com"),
            ("password", "correct horse"),
            ("scope", "openid profile email"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tok["access_token"].as_str().unwrap().to_string();
    assert!(tok["id_token"].is_string());
    // The token verifies with the published JWKS (as a real client would do it).
    let jwks: JwkSet = c
        .get(disco["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["api://default"]);
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(&access, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "00u1ada0000000000001");
    let info = c
        .get(disco["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    assert_eq!(
        info.json::<Value>().await.unwrap()["email"],
        "ada@example.com"
    );
    // One hour of virtual time later the token has expired: Okta's 401 with WWW-Authenticate.
    advance(&c, &url, 3600 * 1000).await;
    let expired = c
        .get(format!("{url}/oauth2/default/v1/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    assert!(
        expired.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn client_credentials_scopes_and_oauth_errors() {
    let (_twin, server) = serve("okta").await;
    let (c, url) = (client(), server.url());
    let token_url = format!("{url}/oauth2/default/v1/token");
    let tok: Value = c
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "twin-client"),
            ("client_secret", "twin-secret"),
            ("scope", "orders:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    let no_openid = c
        .get(format!("{url}/oauth2/default/v1/userinfo"))
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(no_openid.status(), 403);
    assert!(
        no_openid.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let bad_secret = c
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "twin-client"),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_secret.status(), 401);
    assert_eq!(
        bad_secret.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
    let bad_scope = c
        .post(&token_url)
        .basic_auth("twin-client", Some("twin-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_scope.status(), 400);
    assert_eq!(
        bad_scope.json::<Value>().await.unwrap()["error"],
        "invalid_scope"
    );
    let tampered = c
        .get(format!("{url}/oauth2/default/v1/userinfo"))
        .bearer_auth("eyJhbGciOiJSUzI1NiJ9.e30.AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
}
