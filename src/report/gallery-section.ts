/**
 * Examples gallery: per target and attack, each example's clean | adversarial | amplified
 * perturbation images with true label, predictions and confidences, and saliency maps beside
 * them when the evaluation computed some.
 */
import type { EvaluationResults, GalleryItem, TargetResults } from '../evaluate/results.js';
import { className, escapeHtml, formatEps, normName, pct } from './format.js';

const PNG_DATA_URI = /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/;

/** An `<img>` for a PNG data URI; anything else (a URL, a script) is refused, not linked. */
export function image(src: string, alt: string, caption: string): string {
  const body = PNG_DATA_URI.test(src)
    ? `<img src="${src}" alt="${escapeHtml(alt)}">`
    : `<div class="missing" role="img" aria-label="${escapeHtml(alt)}">no image</div>`;
  return `<figure>${body}<figcaption>${caption}</figcaption></figure>`;
}

function item(results: EvaluationResults, g: GalleryItem): string {
  const name = (k: number) => escapeHtml(className(results, k));
  const fooled = g.adversarialPrediction !== g.label;
  const cleanRight = g.cleanPrediction === g.label;
  const panels = [
    image(g.clean, `clean example ${g.index}`, 'clean'),
    image(g.adversarial, `adversarial example ${g.index}`, 'adversarial'),
    image(
      g.perturbation,
      `perturbation of example ${g.index}`,
      `perturbation ×${Number(g.amplification.toPrecision(3))}`,
    ),
  ];
  const saliency = g.saliency.map(
    (s) =>
      `<div class="saliency"><div class="panels">` +
      image(s.clean, `${s.method} saliency, clean`, `${escapeHtml(s.method)} · clean`) +
      image(s.adversarial, `${s.method} saliency, adversarial`, `${escapeHtml(s.method)} · adv.`) +
      '</div></div>',
  );
  const verdict = !cleanRight
    ? '<span class="badge skip">misclassified before the attack</span>'
    : fooled
      ? '<span class="badge warn">fooled</span>'
      : '<span class="badge pass">resisted</span>';
  return (
    `<div class="example"><div class="panels">${panels.join('')}${saliency.join('')}</div>` +
    `<dl class="labels"><div><dt>example</dt><dd>#${g.index} ${verdict}</dd></div>` +
    `<div><dt>true label</dt><dd>${name(g.label)}</dd></div>` +
    `<div><dt>clean</dt><dd class="${cleanRight ? 'right' : 'wrong'}">${name(g.cleanPrediction)} (${pct(g.cleanConfidence)})</dd></div>` +
    `<div><dt>adversarial</dt><dd class="${fooled ? 'wrong' : 'right'}">${name(g.adversarialPrediction)} (${pct(g.adversarialConfidence)})</dd></div>` +
    '</dl></div>'
  );
}

function targetGallery(results: EvaluationResults, t: TargetResults): string {
  const groups = new Map<string, GalleryItem[]>();
  for (const g of t.gallery) {
    const key = `${g.attack} · ${normName(g.norm)} ε=${formatEps(g.eps)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(g);
  }
  return (
    `<h3>${escapeHtml(t.id)}</h3>` +
    [...groups]
      .map(
        ([key, items]) =>
          `<h4>${escapeHtml(key)}</h4><div class="gallery">${items.map((g) => item(results, g)).join('')}</div>`,
      )
      .join('')
  );
}

export function gallery(results: EvaluationResults): string {
  const withItems = results.targets.filter((t) => t.gallery.length > 0);
  if (withItems.length === 0) return '<p class="empty">No example images were saved.</p>';
  return withItems.map((t) => targetGallery(results, t)).join('\n');
}
