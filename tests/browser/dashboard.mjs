// The live dashboard in a real browser: Debian's chromium, driven by
// playwright-core (which downloads no browser). scripts/browser-test.sh
// starts the simulators and the router and passes their address here.
//
// It loads /dashboard, gives the admin token the page asks for, waits for
// live data from payments sent through the router, slows the default
// processor (its simulator's admin API) and checks that the page shows its
// lane full, a backlog and payments spilled to fallback, then its return;
// drives a processor DOWN through POST /api/v1/transactions and checks that
// the page shows it within a second without a reload, then saves a
// screenshot.

import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

const base = process.env.REROUTE_URL;
const token = process.env.REROUTE_TOKEN;
/** The default processor's simulator, whose delay the lane step changes. */
const defaultProcessor = process.env.DEFAULT_URL;
/** What the router was started with (--max-in-flight). */
const maxInFlight = Number(process.env.MAX_IN_FLIGHT || 8);
const screenshot = process.env.SCREENSHOT || "target/dashboard.png";
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base || !token || !defaultProcessor) {
  console.error("REROUTE_URL, REROUTE_TOKEN and DEFAULT_URL are required");
  process.exit(2);
}
/** How soon a status change must show on the page. */
const VISIBLE_WITHIN_MS = 1000;

let passed = 0;
let failed = 0;

async function step(name, body) {
  const started = performance.now();
  try {
    const note = await body();
    passed += 1;
    const took = Math.round(performance.now() - started);
    console.log(`ok   ${name} (${took} ms)${note ? ": " + note : ""}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e.message}`);
    throw e;
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function post(path, body) {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  check(res.ok, `POST ${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** Sets the simulated processor's delay (the Rinha admin API). */
async function setDelay(url, ms) {
  const res = await fetch(url + "/admin/configurations/delay", {
    method: "PUT",
    headers: { "content-type": "application/json", "x-rinha-token": "123" },
    body: JSON.stringify({ delay: ms }),
  });
  check(res.ok, `setting the delay of ${url} answered ${res.status}`);
}

const statusOf = (id) => `[data-processor="${id}"] [data-role="status"]`;
const numberIn = (page, selector) =>
  page.$eval(selector, (el) => Number(el.textContent)).catch(() => NaN);

const userDataDir = mkdtempSync(join(tmpdir(), "reroute-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = context.pages()[0] || (await context.newPage());
const elsewhere = [];
const consoleErrors = [];
page.on("request", (r) => {
  if (!r.url().startsWith(base + "/")) elsewhere.push(r.url());
});
page.on("console", (m) => {
  // The first snapshot is refused (401) until the token is given: expected.
  if (m.type() === "error" && !m.text().includes("401")) consoleErrors.push(m.text());
});
page.on("pageerror", (e) => consoleErrors.push(e.message));

try {
  await step("the page loads without a token and asks for one", async () => {
    const res = await page.goto(base + "/dashboard");
    check(res.status() === 200, `GET /dashboard answered ${res.status()}`);
    await page.waitForSelector("#token-panel.shown", { timeout: 5000 });
    check((await page.textContent("#conn")) === "token required", "no 'token required'");
  });

  await step("the token opens the live feed", async () => {
    await page.fill("#token-input", token);
    await page.click("#token-form button");
    await page.waitForFunction(() => document.getElementById("conn").textContent === "live", null, {
      timeout: 5000,
    });
    await page.waitForSelector(statusOf("default"), { timeout: 5000 });
    check((await page.textContent(statusOf("default"))) === "HEALTHY", "default is not HEALTHY");
    check(!(await page.isVisible("#token-panel")), "the token panel is still shown");
  });

  // From here on, a reload would clear this marker.
  await page.evaluate(() => {
    window.__sameDocument = true;
  });

  await step("payments sent through the router show up live", async () => {
    const sent = 20;
    await Promise.all(
      Array.from({ length: sent }, (_, i) =>
        post("/payments", { correlationId: randomUUID(), amount: 10 + i }),
      ),
    );
    const selector = '[data-processor="default"] [data-role="transactions"]';
    await page.waitForFunction(
      ([sel, n]) => Number(document.querySelector(sel)?.textContent) >= n,
      [selector, sent],
      { timeout: 10000 },
    );
    const shown = await numberIn(page, selector);
    const rate = await page.textContent('[data-processor="default"] [data-role="authorization"]');
    check(rate === "100.0%", `authorization shown as ${rate}`);
    return `${shown} transactions on default, authorization ${rate}`;
  });

  await step("a slow processor's lane, backlog and spills show live", async () => {
    const lane = (role) => `[data-processor="default"] [data-role="lane-${role}"]`;
    check((await page.textContent(lane("limit"))) === String(maxInFlight),
      `limit shown as ${await page.textContent(lane("limit"))}`);
    await setDelay(defaultProcessor, 2000);
    // Bursts until the page shows default full and spilling: the router
    // needs an answer or a health probe to know default is slow.
    let shown = null;
    for (let burst = 0; burst < 5 && !shown; burst += 1) {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => post("/payments", { correlationId: randomUUID(), amount: 1 + i })),
      );
      shown = await page
        .waitForFunction(
          ([inFlight, spilled, max]) => {
            const n = (sel) => Number(document.querySelector(sel)?.textContent);
            return n(inFlight) === max && n(spilled) > 0 && n(spilled);
          },
          [lane("in-flight"), lane("spilled"), maxInFlight],
          { timeout: 2500 },
        )
        .then((h) => h.jsonValue())
        .catch(() => null);
    }
    check(shown, "the page never showed default's lane full with payments spilled");
    const figures = {};
    for (const role of ["limit", "in-flight", "waiting", "throughput", "expected-wait", "spilled"]) {
      figures[role] = await page.textContent(lane(role));
    }
    check(Number(figures.throughput) > 0, `throughput shown as ${figures.throughput}`);
    // default keeps up again: its backlog drains, on the page too.
    await setDelay(defaultProcessor, 0);
    await page.waitForFunction(
      ([inFlight, waiting]) =>
        document.querySelector(inFlight)?.textContent === "0" && document.querySelector(waiting)?.textContent === "0",
      [lane("in-flight"), lane("waiting")],
      { timeout: 10000 },
    );
    check(await page.evaluate(() => window.__sameDocument === true), "the page was reloaded");
    return Object.entries(figures).map(([k, v]) => `${k} ${v}`).join(", ") + "; then drained";
  });

  await step(`a processor driven DOWN through the API shows within ${VISIBLE_WITHIN_MS} ms`, async () => {
    let status = "HEALTHY";
    let sent = 0;
    while (status !== "DOWN") {
      check(sent < 200, "default never went DOWN");
      const answer = await post("/api/v1/transactions", {
        processor_id: "default",
        result: "error",
        latency_ms: 900,
      });
      status = answer.status;
      sent += 1;
    }
    const downAt = performance.now();
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.textContent === "DOWN",
      statusOf("default"),
      { timeout: 5000, polling: "raf" },
    );
    const took = Math.round(performance.now() - downAt);
    check(took <= VISIBLE_WITHIN_MS, `DOWN showed after ${took} ms`);
    check(await page.evaluate(() => window.__sameDocument === true), "the page was reloaded");
    return `${sent} errors recorded; DOWN on the page ${took} ms after the API said so`;
  });

  await step("the alert feed and the recommendation follow", async () => {
    await page.waitForSelector('#alerts li[data-processor="default"][data-to="DOWN"]', { timeout: 2000 });
    await page.waitForFunction(
      () => document.getElementById("recommended").dataset.processor === "fallback",
      null,
      { timeout: 2000 },
    );
    const reason = await page.innerText('#alerts li[data-processor="default"][data-to="DOWN"]');
    return reason.replace(/\s+/g, " ").trim();
  });

  await step("the rolling chart is drawn", async () => {
    // A few more points, so that the screenshot shows the lines.
    await page.waitForTimeout(3000);
    const inked = await page.evaluate(() => {
      const c = document.getElementById("chart");
      const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
      return n;
    });
    check(inked > 1000, `only ${inked} pixels drawn`);
    return `${inked} pixels drawn`;
  });

  await step("nothing is fetched from anywhere but the router, and no script error", async () => {
    check(elsewhere.length === 0, `requests elsewhere: ${elsewhere.join(", ")}`);
    check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
  });
} catch {
  // reported by step(); the screenshot below helps to see why
} finally {
  mkdirSync(dirname(screenshot), { recursive: true });
  await page.screenshot({ path: screenshot, fullPage: true }).catch((e) => {
    console.log(`no screenshot: ${e.message}`);
  });
  console.log(`screenshot: ${screenshot}`);
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
