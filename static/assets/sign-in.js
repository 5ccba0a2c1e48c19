// Sign-in and sign-up forms: call the client API, then go to `redirect_url`
// (same-origin only) or /account.
"use strict";

function safeRedirect() {
  const raw = new URLSearchParams(location.search).get("redirect_url");
  if (raw) {
    try {
      const target = new URL(raw, location.origin);
      if (target.origin === location.origin && !target.pathname.startsWith("/sign-")) {
        return target.pathname + target.search + target.hash;
      }
    } catch (_) { /* not a URL: fall through */ }
  }
  return "/account";
}

function describe(body) {
  if (body && body.fields) {
    return Object.entries(body.fields).map(([field, reason]) => `${field.replace("_", " ")} ${reason}`).join("; ");
  }
  return (body && body.message) || "Something went wrong; try again.";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  return { response, data };
}

const ERRORS = {
  link_invalid: "That sign-in link is used, expired or wrong. Ask for a new one below.",
  oauth_failed: "Signing in with that provider did not work. Try again, or use another way.",
  ticket_invalid: "That sign-in link is used, expired or revoked.",
};

// Names pages show for well-known providers; others are capitalized.
const PROVIDER_LABELS = { github: "GitHub", google: "Google", okta: "Okta", entra: "Microsoft Entra ID", keycloak: "Keycloak" };

// One "Continue with …" link per provider the server has (`GET /v1/environment`): a
// plain navigation to /v1/oauth/{provider}, which goes to the provider and back.
async function showProviders(signUp) {
  let environment;
  try {
    const response = await fetch("/v1/environment", { credentials: "same-origin" });
    if (!response.ok) return;
    environment = await response.json();
  } catch (_) {
    return;
  }
  const providers = environment.oauth_providers || [];
  if (providers.length === 0) return;
  const list = document.getElementById("provider-buttons");
  for (const name of providers) {
    const link = document.createElement("a");
    link.className = "button provider";
    link.id = `oauth-${name}`;
    link.href = `/v1/oauth/${encodeURIComponent(name)}?redirect_url=${encodeURIComponent(safeRedirect())}`;
    const label = PROVIDER_LABELS[name] || name.charAt(0).toUpperCase() + name.slice(1);
    link.textContent = `${signUp ? "Sign up" : "Continue"} with ${label}`;
    list.appendChild(link);
  }
  document.getElementById("providers").hidden = false;
}

// A first factor answered `needs_second_factor`: ask for the authenticator (or a backup)
// code on this page; the attempt belongs to this browser's `__client` cookie.
function askSecondFactor(attemptId) {
  document.getElementById("auth-form").hidden = true;
  document.getElementById("email-code").hidden = true;
  document.getElementById("second-factor").hidden = false;
  const form = document.getElementById("second-factor-form");
  form.dataset.attempt = attemptId;
  form.dataset.strategy = "totp";
  document.getElementById("second-factor-code").focus();
}

// Follows a first factor's answer: the next page, or the second-factor step.
async function afterFirstFactor(response, data, error) {
  if (response.ok && data && data.status === "needs_second_factor") {
    askSecondFactor(data.sign_in.id);
    return;
  }
  if (response.ok) {
    location.assign(safeRedirect());
    return;
  }
  error.textContent = describe(data);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("auth-form");
  const signUp = location.pathname.startsWith("/sign-up");
  const error = document.getElementById("error");
  const swap = document.getElementById("switch");
  const keep = location.search;
  const params = new URLSearchParams(location.search);
  if (params.get("error")) {
    error.textContent = ERRORS[params.get("error")] || "Something went wrong; try again.";
  }
  if (!params.get("second_factor")) showProviders(signUp);
  document.getElementById("forgot").href = "/reset-password" + (form.email.value ? `?email=${encodeURIComponent(form.email.value)}` : "");
  form.email.addEventListener("input", () => {
    document.getElementById("forgot").href = "/reset-password?email=" + encodeURIComponent(form.email.value.trim());
  });
  if (signUp) {
    document.getElementById("forgot-row").hidden = true;
    document.getElementById("email-code").hidden = true;
    form.dataset.mode = "sign-up";
    document.title = "Sign up · Gatehouse";
    document.getElementById("title").textContent = "Create your account";
    document.getElementById("submit").textContent = "Sign up";
    document.getElementById("name-fields").hidden = false;
    document.getElementById("password").autocomplete = "new-password";
    swap.textContent = "I already have an account";
    swap.href = "/sign-in" + keep;
  } else {
    swap.href = "/sign-up" + keep;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = {
      email: form.email.value.trim(),
      password: form.password.value,
    };
    if (signUp && form.first_name.value.trim()) body.first_name = form.first_name.value.trim();
    const button = document.getElementById("submit");
    button.disabled = true;
    try {
      const response = await fetch(signUp ? "/v1/sign-up" : "/v1/sign-in", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (response.status === 202) {
        // EMAIL_VERIFICATION=required: no session until the emailed code is confirmed.
        const { sign_up: pending } = await response.json();
        form.hidden = true;
        document.getElementById("verify-sign-up").hidden = false;
        document.getElementById("pending-email").textContent = pending.email;
        document.getElementById("sign-up-code-form").dataset.signUp = pending.id;
        document.getElementById("sign-up-code").focus();
        return;
      }
      await afterFirstFactor(response, await response.json().catch(() => null), error);
    } catch (_) {
      error.textContent = "The server could not be reached.";
    } finally {
      button.disabled = false;
    }
  });

  const codeRequest = document.getElementById("code-request-form");
  const codeForm = document.getElementById("code-form");
  codeRequest.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const { response, data } = await post("/v1/sign-in/email-code", { email: codeRequest.email.value.trim() });
    if (response.status === 202) {
      codeForm.hidden = false;
      document.getElementById("code").focus();
    } else {
      error.textContent = describe(data);
    }
  });
  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const { response, data } = await post("/v1/sign-in/email-code/attempt", {
      email: codeRequest.email.value.trim(),
      code: document.getElementById("code").value.trim(),
    });
    await afterFirstFactor(response, data, error);
  });
  const secondFactor = document.getElementById("second-factor-form");
  document.getElementById("use-backup").addEventListener("click", () => {
    secondFactor.dataset.strategy = "backup_code";
    document.getElementById("second-factor-hint").textContent = "Enter one of your backup codes (each works once).";
    document.getElementById("use-backup").hidden = true;
    document.getElementById("second-factor-code").focus();
  });
  secondFactor.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const { response, data } = await post(`/v1/sign-in/${secondFactor.dataset.attempt}/second-factor`, {
      strategy: secondFactor.dataset.strategy,
      code: document.getElementById("second-factor-code").value.trim(),
    });
    if (response.ok) return location.assign(safeRedirect());
    error.textContent = describe(data);
    document.getElementById("second-factor-code").value = "";
  });
  // An emailed link (or another navigation) signed in the first factor: finish here.
  if (params.get("second_factor")) askSecondFactor(params.get("second_factor"));
  const signUpCode = document.getElementById("sign-up-code-form");
  signUpCode.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const { response, data } = await post(`/v1/sign-up/${signUpCode.dataset.signUp}/verify`, {
      code: document.getElementById("sign-up-code").value.trim(),
    });
    if (response.ok) return location.assign(safeRedirect());
    error.textContent = describe(data);
  });
});
