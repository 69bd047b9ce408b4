/**
 * Colormaps for relevance maps. Each map is a table of evenly spaced 8-bit RGB control points;
 * `colormap(name, t)` interpolates linearly between them, so at t = i/255 a 256-entry map returns
 * exactly its table entry (the value OpenCV / matplotlib would give for that 8-bit index).
 */

export type ColormapName = 'jet' | 'viridis' | 'inferno' | 'gray' | 'bwr' | 'rdbu';

export const COLORMAPS: readonly ColormapName[] = Object.freeze(['jet', 'viridis', 'inferno', 'gray', 'bwr', 'rdbu'] as const);

export function isColormapName(name: string): name is ColormapName {
  return (COLORMAPS as readonly string[]).includes(name);
}

/** Diverging maps put 0 at the neutral centre (t = 0.5) and are meant for signed relevance. */
export function isDiverging(name: ColormapName): boolean {
  return name === 'bwr' || name === 'rdbu';
}

/**
 * OpenCV's COLORMAP_JET (what the authors' notebooks draw with `cv2.applyColorMap`). OpenCV samples
 * Octave's jet (`clamp(1.5 - |4x - c|)`, c = 3, 2, 1 for r, g, b) at 256 float32 breakpoints,
 * interpolates them in float32 and converts with `convertTo(CV_8U, 255)`, which rounds half to
 * even. Most entries are exact .5 ties before that rounding, so the float32 steps are replayed here;
 * a plain `Math.round(255 * jet(x))` differs from OpenCV's table in about 150 of the 768 bytes.
 */
function openCvJet(): Uint8Array {
  const f = Math.fround;
  const step = f(1 / 255);
  const X = new Float64Array(256);
  for (let i = 0; i < 256; i++) X[i] = f(0 + f(i * step));
  const rint = (v: number): number => {
    const fl = Math.floor(v);
    const d = v - fl;
    if (d !== 0.5) return d > 0.5 ? fl + 1 : fl;
    return fl % 2 === 0 ? fl : fl + 1;
  };
  // OpenCV's interp1 at its own breakpoints: the search lands on X[high] == xi and the formula is
  // evaluated anyway, so its float32 rounding is part of the result.
  const interp = (Y: Float64Array, xi: number): number => {
    let low = 0;
    let high = 255;
    while (high - low > 1) {
      const c = low + ((high - low) >> 1);
      if (xi > X[c]) low = c;
      else high = c;
    }
    return f(Y[low] + f(f(f(xi - X[low]) * f(Y[high] - Y[low])) / f(X[high] - X[low])));
  };
  const lut = new Uint8Array(256 * 3);
  [3, 2, 1].forEach((centre, ch) => {
    const Y = new Float64Array(256);
    for (let i = 0; i < 256; i++) Y[i] = f(Math.min(1, Math.max(0, 1.5 - Math.abs((4 * i) / 255 - centre))));
    for (let i = 0; i < 256; i++) {
      lut[i * 3 + ch] = Math.min(255, Math.max(0, rint(f(interp(Y, X[i]) * 255))));
    }
  });
  return lut;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

// matplotlib's viridis and inferno (Smith & van der Walt, CC0), 256 entries rounded to 8 bits,
// as d3-scale-chromatic ships them.
const VIRIDIS_HEX =
  '44015444025645045745055946075a46085c460a5d460b5e470d60470e6147106347116447136548146748166848176948186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f854240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f881fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad8128ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc743fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc8635ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21ad8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725';
const INFERNO_HEX =
  '00000401000501010601010802010a02020c02020e03021004031204031405041706041907051b08051d09061f0a07220b07240c08260d08290e092b10092d110a30120a32140b34150b37160b39180c3c190c3e1b0c411c0c431e0c451f0c48210c4a230c4c240c4f260c51280b53290b552b0b572d0b592f0a5b310a5c320a5e340a5f3609613809623909633b09643d09653e0966400a67420a68440a68450a69470b6a490b6a4a0c6b4c0c6b4d0d6c4f0d6c510e6c520e6d540f6d550f6d57106e59106e5a116e5c126e5d126e5f136e61136e62146e64156e65156e67166e69166e6a176e6c186e6d186e6f196e71196e721a6e741a6e751b6e771c6d781c6d7a1d6d7c1d6d7d1e6d7f1e6c801f6c82206c84206b85216b87216b88226a8a226a8c23698d23698f24699025689225689326679526679727669827669a28659b29649d29649f2a63a02a63a22b62a32c61a52c60a62d60a82e5fa92e5eab2f5ead305dae305cb0315bb1325ab3325ab43359b63458b73557b93556ba3655bc3754bd3853bf3952c03a51c13a50c33b4fc43c4ec63d4dc73e4cc83f4bca404acb4149cc4248ce4347cf4446d04545d24644d34743d44842d54a41d74b3fd84c3ed94d3dda4e3cdb503bdd513ade5238df5337e05536e15635e25734e35933e45a31e55c30e65d2fe75e2ee8602de9612bea632aeb6429eb6628ec6726ed6925ee6a24ef6c23ef6e21f06f20f1711ff1731df2741cf3761bf37819f47918f57b17f57d15f67e14f68013f78212f78410f8850ff8870ef8890cf98b0bf98c0af98e09fa9008fa9207fa9407fb9606fb9706fb9906fb9b06fb9d07fc9f07fca108fca309fca50afca60cfca80dfcaa0ffcac11fcae12fcb014fcb216fcb418fbb61afbb81dfbba1ffbbc21fbbe23fac026fac228fac42afac62df9c72ff9c932f9cb35f8cd37f8cf3af7d13df7d340f6d543f6d746f5d949f5db4cf4dd4ff4df53f4e156f3e35af3e55df2e661f2e865f2ea69f1ec6df1ed71f1ef75f1f179f2f27df2f482f3f586f3f68af4f88ef5f992f6fa96f8fb9af9fc9dfafda1fcffa4';

/**
 * Diverging maps run blue (t = 0, most negative) → neutral (t = 0.5) → red (t = 1, most positive),
 * the usual LRP convention. 'bwr' is matplotlib's bwr. 'rdbu' is ColorBrewer's 11-class RdBu
 * oriented the same way, i.e. matplotlib's `RdBu_r` (matplotlib's plain `RdBu` puts red at 0);
 * one orientation for both keeps "red = evidence for the class" true whichever is picked.
 */
const RDBU_HEX = '053061' + '2166ac' + '4393c3' + '92c5de' + 'd1e5f0' + 'f7f7f7' + 'fddbc7' + 'f4a582' + 'd6604d' + 'b2182b' + '67001f';

const TABLES: Record<ColormapName, Uint8Array> = {
  jet: openCvJet(),
  viridis: fromHex(VIRIDIS_HEX),
  inferno: fromHex(INFERNO_HEX),
  gray: fromHex('000000ffffff'),
  bwr: fromHex('0000ffffffffff0000'),
  rdbu: fromHex(RDBU_HEX),
};

function table(name: ColormapName): Uint8Array {
  const t = TABLES[name];
  if (!t) throw new RangeError(`unknown colormap "${String(name)}" (use one of ${COLORMAPS.join(', ')})`);
  return t;
}

/**
 * Writes colormap(name, t) into out[offset..offset+2] without allocating; the overlay code calls it
 * once per pixel.
 */
export function colormapInto(name: ColormapName, t: number, out: Uint8Array | Uint8ClampedArray, offset: number): void {
  const lut = table(name);
  const last = lut.length / 3 - 1;
  // NaN is drawn as the low end rather than poisoning the pixel.
  const pos = (t > 0 ? (t < 1 ? t : 1) : 0) * last;
  const i0 = Math.floor(pos);
  const i1 = i0 < last ? i0 + 1 : last;
  const w = pos - i0;
  for (let c = 0; c < 3; c++) {
    const a = lut[i0 * 3 + c];
    const b = lut[i1 * 3 + c];
    out[offset + c] = w === 0 ? a : Math.round(a + (b - a) * w);
  }
}

/** colormap() over many values at once into an RGB buffer (3 bytes per value); for drawing whole maps. */
export function colormapArray(name: ColormapName, t: ArrayLike<number>, out: Uint8Array = new Uint8Array(t.length * 3)): Uint8Array {
  const lut = table(name);
  const last = lut.length / 3 - 1;
  for (let i = 0; i < t.length; i++) {
    const v = t[i];
    const pos = (v > 0 ? (v < 1 ? v : 1) : 0) * last;
    const i0 = Math.floor(pos);
    const w = pos - i0;
    const a = i0 * 3;
    const o = i * 3;
    if (w === 0) {
      out[o] = lut[a];
      out[o + 1] = lut[a + 1];
      out[o + 2] = lut[a + 2];
    } else {
      // Same arithmetic as colormapInto (i0 < last whenever w > 0), so both agree to the bit.
      out[o] = Math.round(lut[a] + (lut[a + 3] - lut[a]) * w);
      out[o + 1] = Math.round(lut[a + 1] + (lut[a + 4] - lut[a + 1]) * w);
      out[o + 2] = Math.round(lut[a + 2] + (lut[a + 5] - lut[a + 2]) * w);
    }
  }
  return out;
}

/** t in [0,1] → [r,g,b] 0..255. Values outside are clamped. */
export function colormap(name: ColormapName, t: number): [number, number, number] {
  const out = new Uint8Array(3);
  colormapInto(name, t, out, 0);
  return [out[0], out[1], out[2]];
}

/**
 * The map as a 256-entry RGB table (768 bytes), entry i = colormap(name, i/255). Indexing it with
 * `Math.trunc(255 * t)` reproduces `cv2.applyColorMap(np.uint8(255 * mask), cv2.COLORMAP_JET)`
 * exactly for jet.
 */
export function colormapLut(name: ColormapName): Uint8Array {
  const out = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) colormapInto(name, i / 255, out, i * 3);
  return out;
}
