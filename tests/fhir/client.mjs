// A FHIR client library from npm (fhir-kit-client) against the hub (tests/fhir.rs runs this):
// reads the CapabilityStatement, pages through every Practitioner by the Bundles' next
// links, and finds one by NIK. Prints a JSON summary for the test to check.
//
// usage: HUB_FHIR=http://…/fhir/r4 TOKEN=… NIK=… node client.mjs

import { Client } from 'fhir-kit-client';

const client = new Client({ baseUrl: process.env.HUB_FHIR, bearerToken: process.env.TOKEN });
const capabilities = await client.capabilityStatement();

const ids = [];
let pages = 0;
let bundle = await client.search({ resourceType: 'Practitioner', searchParams: { _count: '7' } });
const total = bundle.total;
while (bundle) {
  pages += 1;
  for (const entry of bundle.entry ?? []) {
    ids.push(entry.resource.id);
  }
  bundle = (await client.nextPage({ bundle })) ?? null;
}

const byNik = await client.search({
  resourceType: 'Practitioner',
  searchParams: { identifier: `https://fhir.kemkes.go.id/id/nik|${process.env.NIK}` },
});
const found = (byNik.entry ?? []).map((e) => e.resource);

console.log(
  JSON.stringify({
    fhirVersion: capabilities.fhirVersion,
    total,
    pages,
    ids,
    foundByNik: found.map((p) => ({
      id: p.id,
      nik: p.identifier?.find((i) => i.system === 'https://fhir.kemkes.go.id/id/nik')?.value,
    })),
  }),
);
