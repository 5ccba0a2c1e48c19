//! Organization permissions in Clerk's session token v2 encoding.
//!
//! A token carries `fea` (comma-separated features, `o:` for organization features),
//! and in `o`: `per` (comma-separated permission names) and `fpm` (one bitmask per org
//! feature of `fea`, in order). Bit `j` of the `i`-th mask grants
//! `org:<i-th org feature>:<j-th per>`. Clerk's tokens and ours are decoded by the same
//! [`decode`], so `has()` cannot tell them apart.

/// Permissions this product checks itself; custom roles may hold others.
pub const DATA_READ: &str = "org:data:read";
pub const DATA_WRITE: &str = "org:data:write";
pub const DATA_DELETE: &str = "org:data:delete";

/// System permissions (Clerk's names): held by `org:admin` only; a custom role cannot
/// list them (or any other `org:sys_…` permission).
pub const SYS_MEMBERSHIPS_MANAGE: &str = "org:sys_memberships:manage";
pub const SYS_PROFILE_MANAGE: &str = "org:sys_profile:manage";
pub const SYS_PROFILE_DELETE: &str = "org:sys_profile:delete";

/// Whether a permission is a system one (`org:sys_<feature>:<action>`).
pub fn is_system_permission(permission: &str) -> bool {
    permission.starts_with("org:sys_")
}

pub use crate::db::roles::{ADMIN_ROLE, MEMBER_ROLE};

/// `org:<feature>:<permission>` split into its parts, when it has that shape.
pub fn split_permission(permission: &str) -> Option<(&str, &str)> {
    let rest = permission.strip_prefix("org:")?;
    let (feature, name) = rest.split_once(':')?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    (plain(feature) && plain(name)).then_some((feature, name))
}

/// The encoded form of a permission set: `(fea, per, fpm)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPermissions {
    pub fea: String,
    pub per: String,
    pub fpm: String,
}

/// Encodes permissions (anything not of the form `org:<feature>:<name>` is skipped).
/// Features and names keep the order of their first appearance in sorted input, so
/// the same set always encodes the same way.
pub fn encode<'a>(permissions: impl IntoIterator<Item = &'a str>) -> EncodedPermissions {
    let mut sorted: Vec<&str> = permissions.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut features: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut masks: Vec<u64> = Vec::new();
    for permission in sorted {
        let Some((feature, name)) = split_permission(permission) else {
            continue;
        };
        let f = features.iter().position(|x| *x == feature).unwrap_or_else(|| {
            features.push(feature);
            masks.push(0);
            features.len() - 1
        });
        let n = names.iter().position(|x| *x == name).unwrap_or_else(|| {
            names.push(name);
            names.len() - 1
        });
        if n < 64 {
            masks[f] |= 1 << n;
        }
    }
    EncodedPermissions {
        fea: features.iter().map(|f| format!("o:{f}")).collect::<Vec<_>>().join(","),
        per: names.join(","),
        fpm: masks.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
    }
}

/// Decodes `fea`, `per` and `fpm` into full permission names. Malformed parts are
/// ignored rather than trusted: a mask that does not parse grants nothing.
pub fn decode(fea: &str, per: &str, fpm: &str) -> Vec<String> {
    let org_features = fea
        .split(',')
        .map(str::trim)
        .filter_map(|f| f.strip_prefix("o:"))
        .filter(|f| !f.is_empty());
    let names: Vec<&str> = per.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let masks = fpm.split(',').map(|m| m.trim().parse::<u64>().ok());
    let mut permissions = Vec::new();
    for (feature, mask) in org_features.zip(masks) {
        let Some(mask) = mask else { continue };
        for (j, name) in names.iter().enumerate().take(64) {
            if mask & (1 << j) != 0 {
                permissions.push(format!("org:{feature}:{name}"));
            }
        }
    }
    permissions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_clerks_documented_example() {
        let permissions = decode("o:dashboard,o:impersonation", "read,manage", "3,2");
        assert_eq!(
            permissions,
            ["org:dashboard:read", "org:dashboard:manage", "org:impersonation:manage"]
        );
    }

    #[test]
    fn encodes_clerks_documented_example() {
        let encoded = encode(["org:dashboard:manage", "org:impersonation:manage", "org:dashboard:read"]);
        // Our order is sorted-first-seen; decoding gives the same set back either way.
        let mut decoded = decode(&encoded.fea, &encoded.per, &encoded.fpm);
        decoded.sort();
        assert_eq!(
            decoded,
            ["org:dashboard:manage", "org:dashboard:read", "org:impersonation:manage"]
        );
        assert_eq!(encoded.fea, "o:dashboard,o:impersonation");
        assert_eq!(encoded.per, "manage,read");
        assert_eq!(encoded.fpm, "3,1");
    }

    #[test]
    fn round_trips_the_built_in_roles() {
        let admin = encode([DATA_READ, DATA_WRITE, DATA_DELETE]);
        assert_eq!(
            (admin.fea.as_str(), admin.per.as_str(), admin.fpm.as_str()),
            ("o:data", "delete,read,write", "7")
        );
        let member = encode([DATA_READ, DATA_WRITE]);
        assert_eq!(decode(&member.fea, &member.per, &member.fpm), [DATA_READ, DATA_WRITE]);
        assert_eq!(encode([]).fpm, "");
    }

    #[test]
    fn user_features_and_garbage_grant_nothing() {
        assert!(decode("u:billing", "read", "1").is_empty());
        assert_eq!(decode("u:billing,o:data", "read", "1"), ["org:data:read"]);
        assert!(decode("o:data", "read", "x").is_empty());
        assert!(decode("", "", "").is_empty());
        assert!(decode("o:data", "read", "18446744073709551615").len() == 1);
        assert_eq!(split_permission("org:data:read"), Some(("data", "read")));
        assert_eq!(
            split_permission("org:sys_memberships:manage"),
            Some(("sys_memberships", "manage"))
        );
        assert_eq!(split_permission("data:read"), None);
        assert_eq!(split_permission("org::read"), None);
    }
}
