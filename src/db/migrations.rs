//! Migrations embedded in the binary, one folder per backend where the DDL differs.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;

macro_rules! migrations {
    ($dir:literal: $($version:literal => $file:literal),* $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($file),
            MigrationType::Simple,
            include_str!(concat!("../../migrations/", $dir, "/", $file, ".sql")).into_sql_str(),
            false,
        )),*]
    };
}

pub fn migrator(backend: Backend) -> Migrator {
    let migrations = match backend {
        Backend::Sqlite => migrations!("sqlite": 1 => "0001_init", 2 => "0002_organizations", 3 => "0003_items"),
        Backend::Postgres => migrations!("postgres": 1 => "0001_init", 2 => "0002_organizations", 3 => "0003_items"),
    };
    Migrator::with_migrations(migrations)
}
