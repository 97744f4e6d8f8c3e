export const name = "trainer";
