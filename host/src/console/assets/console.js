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
for (const region of document.querySelectorAll("[data-live]")) {
  const source = new EventSource(region.dataset.live);
  source.addEventListener("live", (event) => { region.innerHTML = event.data; });
}

// <button data-api="/api/v1/..." data-body="{}" data-confirm="..." data-show="secret">
for (const button of document.querySelectorAll("button[data-api]")) {
  button.addEventListener("click", async () => {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      const body = await callApi(button.dataset.api, { method: "POST", body: button.dataset.body });
      const shown = button.dataset.show && body ? body[button.dataset.show] : null;
      say(shown ? `${button.textContent.trim()}: ${shown}` : `${button.textContent.trim()}: OK`);
      // Enable and disable change which buttons the page shows.
      if (/\/(enable|disable|rollback)$/.test(button.dataset.api)) window.location.reload();
    } catch (error) {
      say(error.message, true);
    } finally {
      button.disabled = false;
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
