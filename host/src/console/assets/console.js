// The console's only script: live page parts (Server-Sent Events), action buttons that call
// the API with the session's CSRF token, and reveals of masked practitioner fields. Pages
// read fine without it; only the buttons need it.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const say = (message, isError) => {
  const status = document.getElementById("status");
  if (!status) return;
  status.textContent = message;
  status.classList.toggle("error", Boolean(isError));
};

async function callApi(path, init) {
  const response = await fetch(path, {
    credentials: "same-origin",
    ...init,
    headers: { "x-csrf-token": csrf(), "content-type": "application/json", ...(init.headers ?? {}) },
  });
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!response.ok) {
    throw new Error(body?.detail ?? `${response.status} ${response.statusText}`);
  }
  return body;
}

// <div data-live="/events">: replaced by each `live` event the server sends.
// A keyboard user's focus inside the region stays on the same link after the update.
for (const region of document.querySelectorAll("[data-live]")) {
  const source = new EventSource(region.dataset.live);
  source.addEventListener("live", (event) => {
    const focused = region.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    region.innerHTML = event.data;
    if (focused) region.querySelector(`[href="${CSS.escape(focused)}"]`)?.focus();
  });
}

// A secret the API shows once (a webhook secret, an API key) is shown in the status line.
const shownOnce = (body) => (body && (body.secret ?? body.key)) || null;

// <button data-api="/api/v1/..." data-method="DELETE" data-confirm="...">: POSTs `{}` (or
// sends the method given, without a body).
for (const button of document.querySelectorAll("button[data-api]")) {
  button.addEventListener("click", async () => {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      const method = button.dataset.method ?? "POST";
      const body = await callApi(button.dataset.api, method === "POST" ? { method, body: "{}" } : { method });
      const secret = shownOnce(body);
      say(secret ? `${button.textContent.trim()}: ${secret}` : `${button.textContent.trim()}: OK`);
      // Enable and disable change which buttons the page shows.
      if (/\/(enable|disable|rollback)$/.test(button.dataset.api)) window.location.reload();
    } catch (error) {
      say(error.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

// <button data-get="/api/v1/audit/verify" data-say="...">: says the answer's first value.
for (const button of document.querySelectorAll("button[data-get]")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const body = await callApi(button.dataset.get, { method: "GET" });
      say(`${button.dataset.say} ${Object.values(body ?? {})[0] ?? ""}`);
    } catch (error) {
      say(error.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

// <form data-api="/api/v1/.../{name}" data-method="PUT">: its fields sent as a JSON object
// (POST unless data-method says otherwise); a `{field}` in the path takes that field's value
// instead; a checkbox marked data-list adds its value to a list of that name.
for (const form of document.querySelectorAll("form[data-api]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    let path = form.dataset.api;
    for (const field of form.elements) {
      if (!field.name) continue;
      if (path.includes(`{${field.name}}`)) {
        path = path.replace(`{${field.name}}`, encodeURIComponent(field.value));
      } else if (field.hasAttribute("data-list")) {
        body[field.name] ??= [];
        if (field.checked) body[field.name].push(field.value);
      } else {
        body[field.name] = field.value;
      }
    }
    try {
      const method = form.dataset.method ?? "POST";
      const answer = await callApi(path, { method, body: JSON.stringify(body) });
      const secret = shownOnce(answer);
      say(secret ? `OK: ${secret}` : "OK");
      form.reset();
    } catch (error) {
      say(error.message, true);
    }
  });
}

// <form data-upload="/api/v1/plugins">: its file is the request body.
for (const form of document.querySelectorAll("form[data-upload]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.querySelector("input[type=file]").files[0];
    if (!file) return;
    try {
      const answer = await callApi(form.dataset.upload, {
        method: "POST",
        body: file,
        headers: { "content-type": "application/octet-stream" },
      });
      say(`OK: ${answer.name} ${answer.version}`);
      form.reset();
    } catch (error) {
      say(error.message, true);
    }
  });
}

// <button data-reveal="/api/v1/practitioners/ID"> fills its card's [data-field]s.
for (const button of document.querySelectorAll("button[data-reveal]")) {
  button.addEventListener("click", async () => {
    const card = button.closest("[data-practitioner]");
    try {
      const person = await callApi(button.dataset.reveal, { method: "GET" });
      for (const field of card.querySelectorAll("[data-field]")) {
        const name = field.dataset.field;
        field.textContent = name === "birth"
          ? `${person.birth_place ?? ""}, ${person.birth_date ?? ""}`
          : (person[name] ?? "");
      }
      button.remove();
      say(document.documentElement.lang === "en"
        ? "Revealed; recorded in the audit log."
        : "Ditampilkan; tercatat di log audit.");
    } catch (error) {
      say(error.message, true);
    }
  });
}
