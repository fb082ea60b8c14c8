#!/usr/bin/env bash
# Refresh the front-end files geoservice ships (no CDN at run time): Swagger UI for /docs,
# OpenLayers for the map page.
# Needs npm and the npm registry; the files are committed, so nothing here runs in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent swagger-ui-dist@5 >/dev/null && tar xzf swagger-ui-dist-*.tgz)
cp "$work"/package/{swagger-ui-bundle.js,swagger-ui-bundle.js.LICENSE.txt,swagger-ui.css,LICENSE,NOTICE,favicon-32x32.png} \
  geoservice/static/swagger-ui/
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$work/package/package.json")
sed -i "s/swagger-ui-dist\` [0-9.]*/swagger-ui-dist\` $version/" geoservice/static/swagger-ui/SOURCE.md
echo "vendored swagger-ui-dist $version"

(cd "$work" && rm -rf package && npm pack --silent ol@10 >/dev/null && tar xzf ol-*.tgz)
cp "$work"/package/dist/ol.js "$work"/package/ol.css "$work"/package/LICENSE.md geoservice/static/map/ol/
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$work/package/package.json")
sed -i "s/package \`ol\` [0-9.]*/package \`ol\` $version/" geoservice/static/map/ol/SOURCE.md
echo "vendored ol $version"
