"""From stored grades to numbers: metrics and voting, run results, agreement between
judges and with people, and the comparison with the original scripts' points."""
