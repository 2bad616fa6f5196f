import { createRequire } from "node:module";
import { dirname } from "node:path";
import express, { Router } from "express";
import { openApiDocument } from "./openapi.ts";

export const DOCS_PATH = "/docs";

// swagger-ui-dist's own folder, found through its package.json (its main entry is CommonJS).
const SWAGGER_UI = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Fairlane API</title>
<link rel="stylesheet" href="${DOCS_PATH}/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="${DOCS_PATH}/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="${DOCS_PATH}/assets/swagger-ui-bundle.js"></script>
<script src="${DOCS_PATH}/init.js"></script>
</body>
</html>
`;
const INIT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, tryItOutEnabled: false });\n`;

/**
 * GET /openapi.json (src/api/openapi.ts) and its rendering for humans at /docs: Swagger UI from the
 * swagger-ui-dist package, served from this origin (no CDN), started by a script file rather than an
 * inline one so the page runs under its Content-Security-Policy (src/api/securityHeaders.ts). Neither
 * needs credentials: the document says what the API does, never whose data it holds.
 */
export function apiDocsRouter(): Router {
  const r = Router();
  r.get("/openapi.json", (_req, res) => {
    res.setHeader("Cache-Control", "no-cache");
    res.json(openApiDocument());
  });
  r.get(DOCS_PATH, (_req, res) => {
    res.type("html").send(PAGE);
  });
  r.get(`${DOCS_PATH}/init.js`, (_req, res) => {
    res.type("js").send(INIT);
  });
  r.use(`${DOCS_PATH}/assets`, express.static(SWAGGER_UI, { index: false, fallthrough: true }));
  return r;
}
