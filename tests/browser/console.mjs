// Drives the console in a real browser (Debian's chromium through playwright-core), as an
// admin and as a viewer, and runs axe-core on every page. tests/console_browser.rs starts the
// hub and simulators and runs this with HUB_URL, CONNECTOR_ID, CONNECTOR_NAME, NIK, PACKAGE
// (a RegNakes 0.2.0 package), CHROMIUM and SCREENSHOTS set; a failed assertion exits non-zero
// with its message.
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const { HUB_URL, CONNECTOR_ID, CONNECTOR_NAME, NIK, PACKAGE, CHROMIUM, SCREENSHOTS } = process.env;
const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
mkdirSync(SCREENSHOTS, { recursive: true });
const step = (what) => console.log(`- ${what}`);

// axe-core's serious and critical violations on the page as it is now. The script is
// evaluated through the DevTools protocol: the console's CSP (rightly) refuses inline scripts.
async function accessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(serious, [], `${name}: axe-core finds serious or critical violations`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
}

async function signInWithSso(context, username) {
  const page = await context.newPage();
  await page.goto(`${HUB_URL}/`);
  assert.equal(new URL(page.url()).pathname, "/login", "a browser that is not signed in is sent to sign in");
  await page.getByRole("link", { name: "Masuk dengan SSO", exact: true }).click();
  await page.getByLabel("Nama pengguna").fill(username);
  await page.getByLabel("Kata sandi").fill(`${username}-password`);
  await page.getByRole("button", { name: "Masuk", exact: true }).click();
  await page.waitForURL(`${HUB_URL}/`);
  await page.getByRole("heading", { name: "Ringkasan", exact: true }).waitFor();
  return page;
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
try {
  const admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  {
    const page = await admin.newPage();
    await page.goto(`${HUB_URL}/login`);
    await accessible(page, "sign-in");
    await shot(page, "sign-in");
    await page.close();
  }

  step("an admin signs in with the SSO and sees the demo connector with its counts");
  const page = await signInWithSso(admin, "admin");
  const row = page.locator(`tr[data-connector="${CONNECTOR_NAME}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /diterima/, "the last run's counts are shown");
  assert.match(await row.innerText(), /berhasil/);
  assert.ok(Number(await page.locator("#practitioners-stored").innerText()) > 0, "records stored are counted");
  await accessible(page, "overview");
  await shot(page, "overview");

  step("the admin runs the connector and watches the run finish without reloading");
  await page.goto(`${HUB_URL}/connectors/${CONNECTOR_ID}`);
  const runs = page.locator("#runs tbody tr");
  const before = await runs.count();
  await page.getByRole("button", { name: "Jalankan sekarang", exact: true }).click();
  await page.waitForFunction(
    ([selector, count]) => {
      const rows = document.querySelectorAll(selector);
      return rows.length > count && rows[0].innerText.includes("berhasil");
    },
    ["#runs tbody tr", before],
    { timeout: 60_000 },
  );
  await accessible(page, "connector");
  await shot(page, "connector");

  step("the admin disables the connector and sees its state change");
  await page.getByRole("button", { name: "Nonaktifkan", exact: true }).click();
  await page.getByRole("button", { name: "Aktifkan", exact: true }).waitFor();
  assert.equal(await page.locator("#connector-state").innerText(), "Nonaktif");

  step("a change sent without the session's CSRF token is refused");
  const withoutToken = await page.evaluate(
    async (id) => (await fetch(`/api/v1/connectors/${id}/enable`, { method: "POST" })).status,
    CONNECTOR_ID,
  );
  assert.equal(withoutToken, 403);
  await page.getByRole("button", { name: "Aktifkan", exact: true }).click();
  await page.getByRole("button", { name: "Nonaktifkan", exact: true }).waitFor();

  step("practitioner search masks identifying fields until revealed");
  await page.getByRole("link", { name: "Tenaga kesehatan", exact: true }).click();
  await page.getByLabel("NIK atau STR").fill(NIK);
  await page.getByRole("button", { name: "Cari", exact: true }).click();
  const nik = page.locator("article.practitioner [data-field=nik]").first();
  await nik.waitFor();
  const masked = await nik.innerText();
  assert.notEqual(masked, NIK);
  assert.ok(masked.includes("•"), `the NIK is masked: ${masked}`);
  await accessible(page, "practitioners");
  await page.getByRole("button", { name: "Tampilkan data", exact: true }).first().click();
  await page.waitForFunction(
    (value) => document.querySelector("article.practitioner [data-field=nik]").innerText === value,
    NIK,
  );
  await shot(page, "practitioner-revealed");

  step("an integrator's settings: a secret set from the connector page");
  await page.goto(`${HUB_URL}/connectors/${CONNECTOR_ID}`);
  await page.getByLabel("Nama", { exact: true }).fill("console_secret");
  await page.getByLabel("Nilai", { exact: true }).fill("s3cret-from-the-console");
  await page.getByRole("button", { name: "Simpan", exact: true }).click();
  await page.locator("#status", { hasText: "OK" }).waitFor();
  await page.reload();
  assert.match(await page.locator("ul.secrets").innerText(), /console_secret — versi 1/);
  assert.ok(!(await page.content()).includes("s3cret-from-the-console"), "a secret's value is never shown");

  step("rejects are grouped by reason, and one can be reprocessed");
  await page.getByRole("link", { name: "Penolakan", exact: true }).click();
  const group = page.locator("#reject-groups tbody tr").first();
  await group.waitFor();
  await accessible(page, "rejects");
  await group.getByRole("link").click();
  await page.locator("#rejects tbody tr").first().waitFor();
  await page.getByRole("button", { name: "Proses ulang", exact: true }).first().click();
  await page.locator("#status", { hasText: "Proses ulang: OK" }).waitFor();
  await accessible(page, "rejects of one reason");
  await shot(page, "rejects");

  step("the job queue, alerts, identity review, plugins and key pages open and are accessible");
  for (const [link, name] of [
    ["Antrean", "jobs"],
    ["Peringatan", "alerts"],
    ["Tinjauan identitas", "identity"],
    ["Plugin", "plugins"],
    ["Kunci enkripsi", "keys"],
  ]) {
    await page.getByRole("link", { name: link, exact: true }).click();
    await page.getByRole("heading", { level: 1 }).waitFor();
    await accessible(page, name);
  }
  assert.match(await page.locator("#key-versions").innerText(), /aktif/);
  await page.getByRole("link", { name: "Plugin", exact: true }).click();
  assert.match(await page.locator("#plugins").innerText(), /regnakes/);
  await shot(page, "plugins");

  step("the audit log verifies its chain and filters by action");
  await page.getByRole("link", { name: "Log audit", exact: true }).click();
  await page.getByRole("button", { name: "Periksa rantai audit", exact: true }).click();
  await page.locator("#status", { hasText: "Rantai audit utuh sampai entri" }).waitFor();
  await page.getByLabel("Tindakan", { exact: true }).fill("auth.login");
  await page.getByRole("button", { name: "Saring", exact: true }).click();
  const actions = await page.locator("#audit tbody tr td:nth-child(4)").allInnerTexts();
  assert.ok(actions.length > 0 && actions.every((a) => a === "auth.login"), `only sign-ins: ${actions}`);
  await accessible(page, "audit");
  await shot(page, "audit");

  step("an admin creates an API key, shown once");
  await page.getByRole("link", { name: "Kunci API", exact: true }).click();
  await page.getByLabel("Nama", { exact: true }).fill("from-the-console");
  await page.getByLabel("Peran", { exact: true }).selectOption("operator");
  await page.getByRole("button", { name: "Buat", exact: true }).click();
  await page.locator("#status", { hasText: "OK: hub_" }).waitFor();
  await accessible(page, "api keys");
  await page.reload();
  assert.match(await page.locator("#api-keys").innerText(), /from-the-console\s+operator/);

  step("an upload installs a plugin version; the connector moves to it and back");
  page.on("dialog", (dialog) => dialog.accept());
  await page.getByRole("link", { name: "Plugin", exact: true }).click();
  await page.getByLabel("Paket plugin (.hfpkg)").setInputFiles(PACKAGE);
  await page.getByRole("button", { name: "Pasang", exact: true }).click();
  await page.locator("#status", { hasText: "OK: regnakes 0.2.0" }).waitFor();
  await page.goto(`${HUB_URL}/connectors/${CONNECTOR_ID}`);
  await page.getByLabel("Versi", { exact: true }).selectOption("0.2.0");
  await page.getByRole("button", { name: "Ganti versi plugin", exact: true }).click();
  await page.locator("#status", { hasText: "OK" }).waitFor();
  await page.reload();
  assert.match(await page.locator("dl.settings").innerText(), /regnakes 0\.2\.0/);
  await page.getByRole("button", { name: "Kembalikan versi", exact: true }).click();
  await page.waitForFunction(() => document.querySelector("dl.settings").innerText.includes("regnakes 0.1.0"));

  step("a webhook secret is rotated and shown once");
  await page.getByRole("button", { name: "Ganti rahasia webhook", exact: true }).click();
  await page.locator("#status", { hasText: "whsec_" }).waitFor();

  step("the console speaks English on request");
  await page.goto(`${HUB_URL}/`);
  await page.getByRole("link", { name: "English", exact: true }).click();
  await page.getByRole("heading", { name: "Overview", exact: true }).waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "en");
  await accessible(page, "overview (English)");
  await page.getByRole("link", { name: "Bahasa Indonesia", exact: true }).click();
  await page.getByRole("heading", { name: "Ringkasan", exact: true }).waitFor();

  step("on a tablet the overview still fits");
  const tablet = await browser.newContext({ viewport: { width: 768, height: 1024 }, storageState: await admin.storageState() });
  const onTablet = await tablet.newPage();
  await onTablet.goto(`${HUB_URL}/`);
  const overflow = await onTablet.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the overview scrolls sideways by ${overflow}px on a tablet`);
  await shot(onTablet, "overview-tablet");

  step("a viewer sees no mutating button, and the API refuses the viewer's forged request");
  const viewerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const viewer = await signInWithSso(viewerContext, "viewer");
  await viewer.goto(`${HUB_URL}/connectors/${CONNECTOR_ID}`);
  assert.equal(await viewer.locator("button[data-api]").count(), 0);
  assert.equal(await viewer.getByRole("link", { name: "Tenaga kesehatan", exact: true }).count(), 0, "no practitioner search without pii:read");
  const forged = await viewer.evaluate(async (id) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const response = await fetch(`/api/v1/connectors/${id}/disable`, { method: "POST", headers: { "x-csrf-token": csrf } });
    return response.status;
  }, CONNECTOR_ID);
  assert.equal(forged, 403);
  for (const adminOnly of ["Log audit", "Kunci API", "Kunci enkripsi"]) {
    assert.equal(await viewer.getByRole("link", { name: adminOnly, exact: true }).count(), 0, `no ${adminOnly} link for a viewer`);
  }
  const auditPage = await viewer.goto(`${HUB_URL}/audit`);
  assert.equal(auditPage.status(), 403, "the audit page refuses a viewer");
  await viewer.goto(`${HUB_URL}/connectors/${CONNECTOR_ID}`);
  await accessible(viewer, "connector (viewer)");
  await shot(viewer, "connector-viewer");

  step("signing out ends the session");
  await page.getByRole("button", { name: "Keluar", exact: true }).click();
  await page.waitForURL(`${HUB_URL}/login`);
  await page.goto(`${HUB_URL}/`);
  assert.equal(new URL(page.url()).pathname, "/login");
} finally {
  await browser.close();
}
console.log("console: every step passed");
