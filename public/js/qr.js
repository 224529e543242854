// An invite link as a QR code: the vendored encoder (uqr, MIT) gives the modules; the SVG is
// built with DOM calls, so no markup string is ever parsed.
import { encode } from "/vendor/uqr/uqr.mjs";

const SVG = "http://www.w3.org/2000/svg";

export function qrCode(text, { label = "QR code" } = {}) {
  const { data, size } = encode(text, { ecc: "M", border: 4 });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", size);
  background.setAttribute("height", size);
  background.setAttribute("fill", "#fff");
  const path = document.createElementNS(SVG, "path");
  let d = "";
  data.forEach((row, y) => row.forEach((on, x) => { if (on) d += `M${x},${y}h1v1h-1z`; }));
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(background, path);
  return svg;
}
