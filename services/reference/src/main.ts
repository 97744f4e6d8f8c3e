export const name = "reference";
