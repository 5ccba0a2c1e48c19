// The reset-password page: ask for a code by email, then set a new password with it.
// The link in the email opens this page with `email` and `code` filled in.
"use strict";

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
  return { response, data: await response.json().catch(() => null) };
}

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.search);
  const request = document.getElementById("request-form");
  const reset = document.getElementById("reset-form");
  const error = document.getElementById("error");
  const showReset = (email) => {
    reset.hidden = false;
    document.getElementById("reset-email").value = email;
    document.getElementById(params.get("code") ? "password" : "code").focus();
  };
  if (params.get("email")) request.email.value = params.get("email");
  if (params.get("code")) {
    document.getElementById("code").value = params.get("code");
    request.hidden = true;
    document.getElementById("sent").hidden = true;
    showReset(params.get("email") || "");
  }
  request.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const email = request.email.value.trim();
    const { response, data } = await post("/v1/password-reset", { email });
    if (response.status === 202) return showReset(email);
    error.textContent = describe(data);
  });
  reset.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const { response, data } = await post("/v1/password-reset/attempt", {
      email: document.getElementById("reset-email").value.trim(),
      code: document.getElementById("code").value.trim(),
      password: document.getElementById("password").value,
    });
    if (response.ok) return location.assign("/account");
    error.textContent = describe(data);
  });
});
