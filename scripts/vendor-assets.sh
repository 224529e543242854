#!/usr/bin/env bash
# Copies the dashboard's third-party browser files from node_modules (pinned in package.json
# and package-lock.json, installed by `npm ci`) into public/vendor/, with their licenses and
# versions: the dashboard loads nothing from a CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
out=public/vendor
rm -rf "$out"
mkdir -p "$out/swagger-ui" "$out/uqr"
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
   node_modules/swagger-ui-dist/LICENSE node_modules/swagger-ui-dist/NOTICE "$out/swagger-ui/"
# No source map is copied: drop the comment that would make a browser's devtools ask for it.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/swagger-ui/swagger-ui-bundle.js"
sed -i 's|/\*# sourceMappingURL=[^*]*\*/||' "$out/swagger-ui/swagger-ui.css"
cp node_modules/uqr/dist/index.mjs "$out/uqr/uqr.mjs"
cp node_modules/uqr/LICENSE "$out/uqr/"
{
  echo "Copied by scripts/vendor-assets.sh from node_modules (see package-lock.json)."
  for pkg in swagger-ui-dist uqr; do
    node -e "const p=require('./node_modules/$pkg/package.json'); console.log(p.name+'@'+p.version+' ('+p.license+')')"
  done
} > "$out/VERSIONS.txt"
touch "$out/.copied"
echo "vendored: $(tr '\n' ' ' < "$out/VERSIONS.txt" | sed 's/^Copied[^)]*)\. //')"
