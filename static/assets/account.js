// The account page: the seeds' SessionManager and SessionList on the client API.
// It keeps its session token fresh by refreshing before the token expires.
"use strict";

const state = { sid: null, jwt: null, refreshTimer: null };

const $ = (id) => document.getElementById(id);
const when = (ms) => new Date(ms).toLocaleString();

function showError(message) {
  $("error").textContent = message || "";
}

function claims(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part));
}

async function call(method, path, body, { bearer = true } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (bearer && state.jwt) headers.authorization = `Bearer ${state.jwt}`;
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    location.assign("/sign-in?redirect_url=" + encodeURIComponent(location.href));
    throw new Error("signed out");
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((data && data.message) || `HTTP ${response.status}`);
    error.code = data && data.error;
    throw error;
  }
  return data;
}

function useToken(jwt) {
  state.jwt = jwt;
  clearTimeout(state.refreshTimer);
  // Refresh ten seconds before expiry (tokens live about a minute).
  const wait = Math.max(5, claims(jwt).exp - Date.now() / 1000 - 10) * 1000;
  state.refreshTimer = setTimeout(refresh, wait);
}

async function refresh() {
  try {
    const { jwt } = await call("POST", `/v1/client/sessions/${state.sid}/tokens`, undefined, { bearer: false });
    useToken(jwt);
    await render();
  } catch (error) {
    showError(error.message);
  }
}

function sessionItem(session) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.sessionId = session.id;
  const text = document.createElement("div");
  const id = document.createElement("code");
  id.textContent = session.id;
  text.append(id);
  if (session.current) {
    const mark = document.createElement("strong");
    mark.className = "current-marker";
    mark.textContent = " (current)";
    text.append(mark);
  }
  const detail = document.createElement("div");
  detail.className = "muted";
  detail.textContent = `${session.user_agent || "unknown device"} · ${session.ip_address || "?"} · last active ${when(session.last_active_at)}`;
  text.append(detail);
  const revoke = document.createElement("button");
  revoke.type = "button";
  revoke.className = "danger revoke";
  revoke.textContent = session.current ? "Sign out" : "Revoke";
  revoke.setAttribute("aria-label", `${revoke.textContent} session ${session.id}`);
  revoke.addEventListener("click", async () => {
    try {
      await call("POST", `/api/me/sessions/${session.id}/revoke`);
      if (session.current) return location.assign("/sign-in");
      await render();
    } catch (error) {
      showError(error.message);
    }
  });
  li.append(text, revoke);
  return li;
}

function button(label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = label;
  b.addEventListener("click", async () => {
    try {
      await onClick();
    } catch (error) {
      showError(error.message);
    }
  });
  return b;
}

function line(title, detail) {
  const text = document.createElement("div");
  const strong = document.createElement("strong");
  strong.textContent = title;
  const muted = document.createElement("div");
  muted.className = "muted";
  muted.textContent = detail;
  text.append(strong, muted);
  return text;
}

function invitationItem(invitation) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.invitationId = invitation.id;
  li.append(
    line(invitation.organization.name, `as ${invitation.role} · expires ${when(invitation.expire_at)}`),
    button("Accept", "primary accept", async () => {
      await call("POST", `/api/me/invitations/${invitation.id}/accept`);
      await refresh();
    }),
  );
  return li;
}

// Members of the active organization; admins also change roles, invite and revoke.
async function renderMembers(me) {
  if (!me.org_id) {
    $("members-section").hidden = true;
    return;
  }
  const isAdmin = me.org_role === "org:admin";
  const [members, roles, pending, audit] = await Promise.all([
    call("GET", "/api/org/members?limit=100"),
    call("GET", "/api/org/roles"),
    isAdmin ? call("GET", "/api/admin/invitations?status=pending&limit=100") : Promise.resolve({ data: [] }),
    isAdmin ? call("GET", "/api/admin/audit-log?limit=20") : Promise.resolve({ data: [] }),
  ]);
  $("audit-section").hidden = !isAdmin;
  $("audit-log").replaceChildren(...audit.data.map((entry) => {
    const li = document.createElement("li");
    li.className = "card";
    li.dataset.action = entry.action;
    const who = entry.actor.id ? `${entry.actor.type} ${entry.actor.id}` : entry.actor.type;
    const by = entry.actor.impersonator ? ` (impersonated by ${entry.actor.impersonator})` : "";
    const what = entry.target ? ` → ${entry.target.type} ${entry.target.id}` : "";
    li.append(line(entry.action, `${who}${by}${what} · ${entry.ip_address || "?"} · ${when(entry.created_at)}`));
    return li;
  }));
  const roleKeys = roles.data.map((r) => r.key);
  $("members").replaceChildren(...members.data.map((member) => {
    const li = document.createElement("li");
    li.className = "card";
    li.dataset.memberEmail = member.user.email;
    const name = [member.user.first_name, member.user.last_name].filter(Boolean).join(" ");
    li.append(line(member.user.email, `${name ? name + " · " : ""}${member.role} since ${when(member.created_at)}`));
    if (isAdmin && member.user.id !== me.user_id) {
      const select = document.createElement("select");
      select.setAttribute("aria-label", `Role of ${member.user.email}`);
      for (const key of roleKeys) select.append(new Option(key, key));
      select.value = member.role;
      select.addEventListener("change", async () => {
        try {
          await call("PATCH", `/api/admin/members/${member.user.id}`, { role: select.value });
          await render();
        } catch (error) {
          showError(error.message);
        }
      });
      li.append(select);
    }
    return li;
  }));
  $("invite-form").hidden = !isAdmin;
  const roleSelect = $("invite-role");
  if (roleSelect.options.length !== roleKeys.length) {
    roleSelect.replaceChildren(...roleKeys.map((key) => new Option(key, key)));
    roleSelect.value = "org:member";
  }
  $("pending-section").hidden = !isAdmin || pending.data.length === 0;
  $("pending-invitations").replaceChildren(...pending.data.map((invitation) => {
    const li = document.createElement("li");
    li.className = "card";
    li.dataset.invitationId = invitation.id;
    li.append(
      line(invitation.email, `as ${invitation.role} · expires ${when(invitation.expire_at)}`),
      button("Revoke", "danger revoke", async () => {
        await call("POST", `/api/admin/invitations/${invitation.id}/revoke`);
        await render();
      }),
    );
    return li;
  }));
  $("members-section").hidden = false;
}

// Runs a sensitive action; when the session's password proof is too old, asks for the
// password (reverification), then runs it again.
async function withFreshPassword(action) {
  try {
    return await action();
  } catch (error) {
    if (error.code !== "reverification_required") throw error;
    const form = $("mfa-password-form");
    form.hidden = false;
    $("mfa-password").focus();
    return new Promise((resolve, reject) => {
      form.onsubmit = async (event) => {
        event.preventDefault();
        try {
          const { jwt } = await call("POST", `/v1/client/sessions/${state.sid}/verify`, { password: $("mfa-password").value }, { bearer: false });
          useToken(jwt);
          $("mfa-password").value = "";
          form.hidden = true;
          resolve(await action());
        } catch (retryError) {
          showError(retryError.message);
          reject(retryError);
        }
      };
    });
  }
}

function showBackupCodes(codes) {
  $("mfa-backup-codes").replaceChildren(...codes.map((code) => {
    const li = document.createElement("li");
    const c = document.createElement("code");
    c.textContent = code;
    li.append(c);
    return li;
  }));
  $("mfa-backup").hidden = false;
}

function renderMfa(profile) {
  const on = profile.two_factor_enabled;
  $("mfa-status").textContent = on
    ? "On: signing in asks for a code from your authenticator app (or a backup code)."
    : "Off: add an authenticator app to protect your account with a second step.";
  $("mfa-enable").hidden = on;
  $("mfa-new-codes").hidden = !on;
  $("mfa-disable").hidden = !on;
  if (on) $("mfa-setup").hidden = true;
}

function identityItem(identity, removable) {
  const li = document.createElement("li");
  li.className = "card";
  li.dataset.identityId = identity.id;
  li.append(line(identity.provider, `${identity.email || "no email"} · linked ${when(identity.created_at)}`));
  if (removable) {
    const unlink = button("Disconnect", "danger unlink", async () => {
      await call("DELETE", `/api/me/identities/${identity.id}`);
      await render();
    });
    unlink.setAttribute("aria-label", `Disconnect ${identity.provider}`);
    li.append(unlink);
  }
  return li;
}

async function render() {
  const [me, profile, sessions, orgs, invitations, identities] = await Promise.all([
    call("GET", "/api/me"),
    call("GET", "/api/me/profile"),
    call("GET", "/api/me/sessions?limit=100"),
    call("GET", "/api/me/organizations"),
    call("GET", "/api/me/invitations"),
    call("GET", "/api/me/identities"),
  ]);
  const current = sessions.data.find((s) => s.current);
  $("user-email").textContent = profile.email;
  $("email-status").textContent = profile.email_verified ? "verified" : "not verified yet";
  renderMfa(profile);
  $("verify-email").hidden = profile.email_verified;
  $("current-session-id").textContent = me.session_id;
  // An impersonated session (support signed in as this user): say so on every render.
  $("impersonation-banner").hidden = !me.actor;
  $("impersonation-banner").textContent = me.actor ? `Impersonated session: ${me.actor.sub} is signed in as this user.` : "";
  $("danger-zone").hidden = Boolean(me.actor);
  if (current) {
    $("current-created").textContent = when(current.created_at);
    $("current-last-active").textContent = when(current.last_active_at);
    $("current-expires").textContent = when(current.expire_at);
  }
  const activeOrg = orgs.data.find((o) => o.organization.id === me.org_id);
  $("current-org").textContent = activeOrg ? `${activeOrg.organization.name} (${me.org_role})` : "Personal account";
  const switcher = $("org-switcher");
  switcher.replaceChildren(new Option("Personal account", ""));
  for (const { organization, role } of orgs.data) {
    switcher.append(new Option(`${organization.name} · ${role}`, organization.id));
  }
  switcher.value = me.org_id || "";
  $("my-invitations-section").hidden = invitations.data.length === 0;
  $("my-invitations").replaceChildren(...invitations.data.map(invitationItem));
  // The last way to sign in (no password, one identity) has no Disconnect button.
  const removable = profile.has_password || identities.data.length > 1;
  $("identities-section").hidden = identities.data.length === 0;
  $("identities").replaceChildren(...identities.data.map((identity) => identityItem(identity, removable && !me.actor)));
  await renderMembers(me);
  $("sessions").replaceChildren(...sessions.data.map(sessionItem));
  $("status").textContent = `${sessions.data.length} active session${sessions.data.length === 1 ? "" : "s"}`;
  document.body.dataset.ready = "true";
}

async function start() {
  const client = await call("GET", "/v1/client", undefined, { bearer: false });
  state.sid = client.last_active_session_id;
  if (!state.sid) return location.assign("/sign-in?redirect_url=" + encodeURIComponent(location.href));
  const { jwt } = await call("POST", `/v1/client/sessions/${state.sid}/tokens`, undefined, { bearer: false });
  useToken(jwt);
  await render();
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-out").addEventListener("click", async () => {
    try {
      await call("POST", `/v1/client/sessions/${state.sid}/end`, undefined, { bearer: false });
    } finally {
      location.assign("/sign-in");
    }
  });
  $("sign-out-all").addEventListener("click", async () => {
    try {
      await call("POST", "/api/me/sessions/revoke-all", { keep_current: false });
    } catch (_) { /* signed out either way */ }
    location.assign("/sign-in");
  });
  $("org-switcher").addEventListener("change", async (event) => {
    try {
      const id = event.target.value || null;
      const { jwt } = await call("POST", `/v1/client/sessions/${state.sid}/touch`, { active_organization_id: id }, { bearer: false });
      useToken(jwt);
      await render();
    } catch (error) {
      showError(error.message);
    }
  });
  $("verify-email-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("POST", "/api/me/email/verification/attempt", { code: $("verify-code").value.trim() });
      $("verify-code").value = "";
      $("verify-message").textContent = "Your email address is verified.";
      await render();
    } catch (error) {
      showError(error.message);
    }
  });
  $("verify-resend").addEventListener("click", async () => {
    try {
      await call("POST", "/api/me/email/verification");
      $("verify-message").textContent = "A new code is on its way (one a minute at most).";
    } catch (error) {
      showError(error.message);
    }
  });
  $("org-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const org = await call("POST", "/api/organizations", { name: $("org-name").value.trim() });
      $("org-name").value = "";
      const { jwt } = await call("POST", `/v1/client/sessions/${state.sid}/touch`, { active_organization_id: org.id }, { bearer: false });
      useToken(jwt);
      await render();
    } catch (error) {
      showError(error.message);
    }
  });
  const guarded = (action) => async () => {
    showError("");
    try {
      await withFreshPassword(action);
    } catch (error) {
      showError(error.message);
    }
  };
  $("mfa-enable").addEventListener("click", guarded(async () => {
    const setup = await call("POST", "/api/me/mfa/totp");
    $("mfa-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(setup.qr_svg);
    $("mfa-secret").textContent = setup.secret;
    $("mfa-backup").hidden = true;
    $("mfa-setup").hidden = false;
    $("mfa-code").focus();
  }));
  $("mfa-confirm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { backup_codes: codes } = await call("POST", "/api/me/mfa/totp/attempt", { code: $("mfa-code").value.trim() });
      $("mfa-code").value = "";
      showBackupCodes(codes);
      await refresh();
    } catch (error) {
      showError(error.message);
    }
  });
  $("mfa-new-codes").addEventListener("click", guarded(async () => {
    const { backup_codes: codes } = await call("POST", "/api/me/mfa/backup-codes");
    showBackupCodes(codes);
  }));
  $("mfa-disable").addEventListener("click", guarded(async () => {
    await call("DELETE", "/api/me/mfa/totp");
    $("mfa-backup").hidden = true;
    await refresh();
  }));
  $("delete-account").addEventListener("click", guarded(async () => {
    if (!confirm("Delete your account for good?")) return;
    await call("DELETE", "/api/me");
    location.assign("/sign-in");
  }));
  $("invite-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const invitation = await call("POST", "/api/admin/invitations", {
        email: $("invite-email").value.trim(),
        role: $("invite-role").value,
      });
      $("invite-email").value = "";
      $("invite-message").textContent = `Invitation sent to ${invitation.email}.`;
      await render();
    } catch (error) {
      showError(error.message);
    }
  });
  start().catch((error) => showError(error.message));
});
