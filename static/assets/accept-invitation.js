// /accept-invitation?ticket=…: shows the invitation, then accepts it (signed in) or
// signs up with it (new here); either way the session lands in the organization.
"use strict";

const $ = (id) => document.getElementById(id);
const ticket = new URLSearchParams(location.search).get("ticket") || "";

function showError(message) {
  $("error").textContent = message || "";
}

async function call(method, path, body, jwt) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (jwt) headers.authorization = `Bearer ${jwt}`;
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const fields = data && data.fields ? " (" + Object.values(data.fields).join("; ") + ")" : "";
    const error = new Error(((data && data.message) || `HTTP ${response.status}`) + fields);
    error.status = response.status;
    throw error;
  }
  return data;
}

// The signed-in session of this browser, if any: its id and a fresh token.
async function currentSession() {
  try {
    const client = await call("GET", "/v1/client");
    const sid = client.last_active_session_id;
    if (!sid) return null;
    const { jwt } = await call("POST", `/v1/client/sessions/${sid}/tokens`);
    return { sid, jwt };
  } catch (_) {
    return null;
  }
}

async function start() {
  if (!ticket) {
    $("status").textContent = "This link has no invitation ticket.";
    return;
  }
  let invitation;
  try {
    invitation = await call("GET", `/v1/invitations/${encodeURIComponent(ticket)}`);
  } catch (error) {
    $("status").textContent = error.status === 404 ? "This invitation link is not valid." : error.message;
    return;
  }
  $("org-name").textContent = invitation.organization.name;
  $("role").textContent = invitation.role;
  $("invited-email").textContent = invitation.email;
  $("invitation").hidden = false;
  if (invitation.status !== "pending") {
    $("status").textContent = `This invitation is ${invitation.status}.`;
    document.body.dataset.ready = "true";
    return;
  }
  $("status").textContent = `You are invited to join ${invitation.organization.name}.`;
  const session = await currentSession();
  if (session) {
    const profile = await call("GET", "/api/me/profile", undefined, session.jwt);
    $("signed-in-email").textContent = profile.email;
    $("accept-box").hidden = false;
    $("accept").addEventListener("click", async () => {
      try {
        await call("POST", "/api/invitations/accept", { ticket }, session.jwt);
        location.assign("/account");
      } catch (error) {
        showError(error.message);
      }
    });
  } else {
    $("sign-in-link").href = "/sign-in?redirect_url=" + encodeURIComponent(location.href);
    $("sign-up-form").hidden = false;
    $("sign-up-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const body = { ticket, password: $("password").value };
        const firstName = $("first-name").value.trim();
        if (firstName) body.first_name = firstName;
        await call("POST", "/v1/sign-up", body);
        location.assign("/account");
      } catch (error) {
        showError(error.message);
      }
    });
  }
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  start().catch((error) => showError(error.message));
});
