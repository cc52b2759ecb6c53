/// `/gateway/docs`: a self-contained HTML page (no CDN, no internet) that renders the OpenAPI document
/// served at `/gateway/openapi.json`: every operation with its parameters, body and responses, and the
/// schemas.
enum APIReferencePage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>RedFire Gateway API</title>
<style>
  body { font: 14px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1d2430; }
  h1 { font-size: 1.6rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
  .op { border: 1px solid #dde; border-radius: 6px; margin: .8rem 0; padding: .6rem .9rem; }
  .method { display: inline-block; min-width: 4.5rem; font-weight: 700; font-family: monospace; }
  .get { color: #1b6ac9; } .post { color: #1d8a4b; } .put { color: #b7791f; } .delete { color: #c53030; }
  code, pre { font-family: ui-monospace, monospace; background: #f4f5f8; border-radius: 4px; padding: 0 .25rem; }
  pre { padding: .6rem; overflow-x: auto; }
  .lock { font-size: .8rem; color: #805ad5; margin-left: .5rem; }
  table { border-collapse: collapse; } td { padding: .1rem .6rem .1rem 0; vertical-align: top; }
</style>
</head>
<body>
<h1>RedFire Gateway API</h1>
<p id="intro">Loading <a href="/gateway/openapi.json">/gateway/openapi.json</a>…</p>
<div id="ops"></div>
<h2>Schemas</h2>
<div id="schemas"></div>
<script>
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const refName = r => r.split("/").pop();
// Shared responses and parameters are references into components: follow them.
const deref = (doc, x) => x && x.$ref && !x.$ref.includes("/schemas/") ?
  x.$ref.slice(2).split("/").reduce((o, k) => o[k], doc) : x;
function schemaText(s) {
  if (!s) return "";
  if (s.$ref) return `<a href="#schema-${refName(s.$ref)}">${refName(s.$ref)}</a>`;
  if (s.type === "array" && s.items) return `array of ${schemaText(s.items)}`;
  return esc(Array.isArray(s.type) ? s.type.join(" | ") : (s.type || "any"));
}
fetch("/gateway/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("intro").innerHTML = esc(doc.info.description) +
    ` <a href="/gateway/openapi.json">OpenAPI ${esc(doc.openapi)} document</a>.`;
  let ops = "";
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const locked = (op.security !== undefined ? op.security : (doc.security || [])).length > 0;
      ops += `<div class="op"><span class="method ${method}">${method.toUpperCase()}</span><code>${esc(path)}</code>` +
        (locked ? `<span class="lock">bearer token</span>` : "") + `<div>${esc(op.summary || "")}</div>`;
      if (op.parameters) ops += "<table>" + op.parameters.map(p => deref(doc, p)).map(p =>
        `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${esc(p.description || "")}</td></tr>`).join("") + "</table>";
      if (op.requestBody) ops += `<div>Body: ${schemaText(op.requestBody.content["application/json"].schema)}</div>`;
      ops += "<table>" + Object.entries(op.responses).map(([code, ref]) => {
        const r = deref(doc, ref);
        const content = r.content ? Object.values(r.content)[0].schema : null;
        return `<tr><td><b>${esc(code)}</b></td><td>${esc(r.description)}</td><td>${schemaText(content)}</td></tr>`;
      }).join("") + "</table></div>";
    }
  }
  document.getElementById("ops").innerHTML = ops;
  let schemas = "";
  for (const [name, s] of Object.entries(doc.components.schemas)) {
    schemas += `<h3 id="schema-${esc(name)}">${esc(name)}</h3><table>` +
      Object.entries(s.properties || {}).map(([k, v]) =>
        `<tr><td><code>${esc(k)}</code></td><td>${schemaText(v)}${v.enum ? " — " + v.enum.map(esc).join(", ") : ""}</td>` +
        `<td>${(s.required || []).includes(k) ? "required" : ""}</td></tr>`).join("") + "</table>";
  }
  document.getElementById("schemas").innerHTML = schemas;
}).catch(e => { document.getElementById("intro").textContent = "Could not load the API document: " + e; });
</script>
</body>
</html>
"""#
}
