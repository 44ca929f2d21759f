// Verifies deliveries with the official Standard Webhooks library.
// Usage: node verify.mjs deliveries.json, where the file is
// {"secret": "whsec_…", "deliveries": [{"id", "timestamp", "signature", "body"}, …]}.
// Prints how many verified; exits 1 naming the first that does not.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

const { secret, deliveries } = JSON.parse(readFileSync(process.argv[2], "utf8"));
const webhook = new Webhook(secret);
let verified = 0;
for (const d of deliveries) {
  const headers = { "webhook-id": d.id, "webhook-timestamp": d.timestamp, "webhook-signature": d.signature };
  try {
    const payload = webhook.verify(d.body, headers);
    if (payload.id !== d.id) throw new Error(`payload id ${payload.id} differs from webhook-id ${d.id}`);
    verified += 1;
  } catch (error) {
    console.error(`delivery ${d.id} does not verify: ${error.message}`);
    process.exit(1);
  }
}
console.log(`${verified} verified`);
