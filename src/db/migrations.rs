//! Migrations embedded in the binary. The DDL is portable (TEXT ids, BIGINT
//! milliseconds, JSON as TEXT, partial indexes), so one set serves SQLite and
//! PostgreSQL; a migration whose DDL had to differ would get a file per backend.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

macro_rules! migrations {
    ($($version:literal => $file:literal),* $(,)?) => {
        vec![$(Migration::new(
            $version,
            Cow::Borrowed($file),
            MigrationType::Simple,
            include_str!(concat!("../../migrations/", $file, ".sql")).into_sql_str(),
            false,
        )),*]
    };
}

pub fn migrator() -> Migrator {
    Migrator::with_migrations(migrations![
        1 => "0001_init",
        2 => "0002_organizations",
        3 => "0003_items",
        4 => "0004_templates",
        5 => "0005_webhooks",
        6 => "0006_retention",
    ])
}
