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

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("auth-form");
  const signUp = location.pathname.startsWith("/sign-up");
  const error = document.getElementById("error");
  const swap = document.getElementById("switch");
  const keep = location.search;
  if (signUp) {
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
      if (response.ok) {
        location.assign(safeRedirect());
        return;
      }
      error.textContent = describe(await response.json().catch(() => null));
    } catch (_) {
      error.textContent = "The server could not be reached.";
    } finally {
      button.disabled = false;
    }
  });
});
