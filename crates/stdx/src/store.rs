//! Store locations.

/// The URL schemes that name a `PostgreSQL` server (libpq's connection URIs,
/// <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS>).
pub const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// Whether the store location `location` names a `PostgreSQL` server (`postgres://` or
/// `postgresql://`) rather than a `SQLite` file. Every store that has both backends picks
/// by this one rule.
pub fn is_postgres_url(location: &str) -> bool {
    POSTGRES_SCHEMES.iter().any(|s| location.starts_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_schemes_name_a_server() {
        assert!(is_postgres_url("postgres://u@h:5432/db"));
        assert!(is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url(".lightsout/state.db"));
        assert!(!is_postgres_url("Postgres://h/db"));
        assert!(!is_postgres_url("host=h dbname=db"));
    }
}
