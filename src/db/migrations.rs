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
        7 => "0007_email",
        8 => "0008_invitations",
        9 => "0009_second_factor",
        10 => "0010_users_admin",
        11 => "0011_api_keys",
        12 => "0012_audit_log",
        13 => "0013_identities",
    ])
}

#[cfg(test)]
mod tests {
    /// A migration file not in the list would be silently skipped: the list and the
    /// folder must name the same files, in order.
    #[test]
    fn every_migration_file_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .map(|name| name.trim_end_matches(".sql").to_owned())
            .collect();
        files.sort();
        let listed: Vec<(i64, String)> = super::migrator()
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        let names: Vec<String> = listed.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(names, files, "src/db/migrations.rs must list every file in migrations/");
        for (version, description) in listed {
            let prefix: i64 = description[..4].parse().unwrap();
            assert_eq!(version, prefix, "{description}: the version is the file's number");
        }
    }
}
