"""Korean interface text of the report (한국어): the English text -> its translation.

Terms follow Korean B2B sales usage: 수주 (won), 실주 (lost), 영업 기회 (opportunity),
거래 (deal), 파이프라인, 퍼널. Placeholders (``{name}``) and ``<b>`` marks stay as in English.
"""

from __future__ import annotations

__all__ = ["KOREAN"]

KOREAN: dict[str, str] = {
    # the page
    "Pipeline health report": "파이프라인 현황 보고서",
    "Process <b>{name}</b> version <b>{version}</b> · as of <b>{as_of}</b> · "
    "generated {generated}": (
        "프로세스 <b>{name}</b> 버전 <b>{version}</b> · 기준 시점 <b>{as_of}</b> · 작성 {generated}"
    ),
    "Stages in order": "단계 순서",
    "Sections": "목차",
    "Summary": "요약",
    "Every weighted figure on this page (the weighted pipeline tile, the forecast's weighted "
    "column and diamonds, the highlighted probability column) uses the estimator "
    "<b>{name}</b>.": (
        "이 페이지의 모든 가중 수치(가중 파이프라인 타일, 예측의 가중 열과 마름모, 강조된 확률 "
        "열)는 추정 방식 <b>{name}</b>을(를) 사용합니다."
    ),
    "Rendered by stagegate from a report document. All charts are generated data, not "
    "images; numbers in charts match the tables.": (
        "stagegate가 보고서 문서로부터 작성했습니다. 모든 차트는 이미지가 아니라 데이터로 그린 "
        "것이며, 차트의 수치는 표와 같습니다."
    ),
    "No data for this section.": "이 항목에 해당하는 데이터가 없습니다.",
    "best": "최적",
    "used": "사용 중",
    # sections
    "Funnel": "퍼널",
    "Forecast": "매출 예측",
    "Deals needing attention": "주의가 필요한 거래",
    "Time in stage": "단계 체류 기간",
    "Win probability": "수주 확률",
    "Backtest": "백테스트",
    "Data quality": "데이터 품질",
    # tiles
    "Opportunities": "영업 기회",
    "in the report": "보고서 대상",
    "Open": "진행 중",
    "not yet won or lost": "아직 수주·실주 전",
    "Won": "수주",
    "Lost": "실주",
    "Win rate": "수주율",
    "won ÷ closed": "수주 ÷ 종료",
    "Open pipeline": "진행 중 파이프라인",
    "Weighted pipeline": "가중 파이프라인",
    "by {estimator}": "{estimator} 기준",
    "Median cycle": "영업 주기 중앙값",
    "won deals, open to won": "수주 거래, 생성부터 수주까지",
    # funnel
    "How many opportunities reached each stage (a deal that skipped a stage still counts as "
    "having passed it), the share of all deals that got there, the conversion from the "
    "previous stage (of the deals that went through every earlier stage in order and reached "
    "the previous one, the share that went on to this one: none on the first stage), and how "
    "many were lost in the stage.": (
        "각 단계에 도달한 영업 기회의 수(단계를 건너뛴 거래도 그 단계를 지난 것으로 셉니다), "
        "전체 거래 중 그 단계까지 간 비율, 이전 단계로부터의 전환율(앞선 모든 단계를 순서대로 "
        "거쳐 이전 단계에 도달한 거래 중 이 단계로 넘어온 비율이며, 첫 단계에는 없습니다), 그리고 "
        "그 단계에서 실주된 거래의 수입니다."
    ),
    "Funnel: opportunities that reached each stage": "퍼널: 각 단계에 도달한 영업 기회",
    "Horizontal bars, one per stage ({stages} stages), with reach rate, conversion from the "
    "previous stage and deals lost in the stage written beside each bar.": (
        "단계마다 가로 막대 하나({stages}개 단계)이며, 각 막대 옆에 도달률, 이전 단계로부터의 "
        "전환율, 그 단계에서 실주된 거래 수를 적었습니다."
    ),
    "Opportunities that reached the stage": "단계에 도달한 영업 기회",
    "Reach": "도달률",
    "From prev.": "이전 단계 대비",
    "Lost here": "이 단계 실주",
    "{stage}: {reached} reached": "{stage}: {reached}건 도달",
    # forecast
    "Bookings by expected close period. The bar spans P10 to P90 of the simulated outcomes: "
    "one period in ten should land below the bar and one in ten above it.": (
        "예상 마감 기간별 수주 금액입니다. 막대는 시뮬레이션 결과의 P10부터 P90까지이며, 열 번 "
        "중 한 번은 막대보다 낮게, 한 번은 높게 나와야 합니다."
    ),
    "The diamond is the probability-weighted amount (estimator <b>{estimator}</b>).": (
        "마름모는 확률로 가중한 금액입니다(추정 방식 <b>{estimator}</b>)."
    ),
    "The diamond is the probability-weighted amount.": "마름모는 확률로 가중한 금액입니다.",
    "Period": "기간",
    "Deals": "거래 수",
    "Overdue": "기한 경과",
    "Weighted": "가중 금액",
    "weighted": "가중 금액",
    "Simulated mean": "시뮬레이션 평균",
    "P10": "P10",
    "P50": "P50",
    "P90": "P90",
    "Forecast by period": "기간별 예측",
    "Close dates: {rule}": "마감일: {rule}",
    "The weighted point of {periods} falls outside P10-P90. The weighted amount keeps every "
    "deal on its expected close date (overdue ones in the as_of period); the simulation moves "
    "close dates as history's slips did, so amounts shift between periods (the simulated mean "
    "shows where they land), and a period with few large deals has a lumpy distribution.": (
        "{periods}의 가중 금액이 P10-P90 범위를 벗어납니다. 가중 금액은 모든 거래를 예상 "
        "마감일에 두지만(기한이 지난 거래는 기준 시점의 기간에), 시뮬레이션은 과거에 마감일이 "
        "밀린 만큼 마감일을 옮기므로 금액이 기간 사이를 오갑니다(시뮬레이션 평균이 도착하는 "
        "곳을 보여 줍니다). 큰 거래가 적은 기간은 분포가 고르지 않습니다."
    ),
    "Forecast distribution by period": "기간별 예측 분포",
    "For each period: a bar from P10 to P90 of simulated bookings, a line at P50, and a "
    "diamond at the probability-weighted amount.": (
        "기간마다 시뮬레이션 수주 금액의 P10부터 P90까지의 막대, P50의 선, 확률 가중 금액의 "
        "마름모를 그렸습니다."
    ),
    "P50 (median)": "P50 (중앙값)",
    "Bookings": "수주 금액",
    "Expected close period": "예상 마감 기간",
    # attention
    "Open deals that have stayed in their stage past its limit, and deals whose expected "
    "close date keeps moving out.": (
        "단계의 체류 한도를 넘긴 진행 중 거래와 예상 마감일이 계속 뒤로 밀리는 거래입니다."
    ),
    "Stalled deals ({count})": "정체된 거래 ({count})",
    "Slipping deals ({count})": "마감일이 밀리는 거래 ({count})",
    "Stalled deals": "정체된 거래",
    "Slipping deals": "마감일이 밀리는 거래",
    "Slippage and outcome": "마감일 연기와 결과",
    "Slip rate (share of deals whose close date was pushed at least once): <b>{rate}</b>.": (
        "연기율(마감일이 한 번 이상 밀린 거래의 비율): <b>{rate}</b>."
    ),
    "{total}, the first {shown} shown": "{total}건 중 처음 {shown}건",
    "Opportunity": "영업 기회",
    "Stage": "단계",
    "Days in stage": "체류 일수",
    "Limit": "한도",
    "Limit from": "한도 근거",
    "Days ÷ won median": "일수 ÷ 수주 중앙값",
    "Amount": "금액",
    "Pushes": "연기 횟수",
    "Days pushed": "연기 일수",
    "First close date": "최초 마감일",
    "Close date": "마감일",
    "Win rate by number of close-date pushes": "마감일 연기 횟수별 수주율",
    "Vertical bars: the win rate of deals whose close date was pushed 0, 1, 2... times.": (
        "세로 막대: 마감일이 0, 1, 2... 번 밀린 거래의 수주율입니다."
    ),
    "Win rate of closed deals": "종료된 거래의 수주율",
    "Slipping deals by number of close-date pushes": "마감일 연기 횟수별 밀리는 거래",
    "Vertical bars: how many open deals had their close date pushed 1, 2, 3... times.": (
        "세로 막대: 마감일이 1, 2, 3... 번 밀린 진행 중 거래의 수입니다."
    ),
    "{pushes} pushes": "{pushes}회 연기",
    "Times the close date was pushed": "마감일이 밀린 횟수",
    # durations
    "Median days spent in each stage by deals that were eventually won and by deals that "
    "were eventually lost. Long lost bars mean deals that linger are usually lost: a stall "
    'limit there pays off. "Lost ÷ won (medians)" divides the lost median by the won median '
    'shown beside it; "lost ÷ won (means)" divides the mean dwell of lost deals by that of '
    "won deals.": (
        "결국 수주된 거래와 결국 실주된 거래가 각 단계에 머문 일수의 중앙값입니다. 실주 막대가 "
        "길면 오래 머무는 거래는 대개 실주된다는 뜻이므로, 그 단계에 체류 한도를 두면 도움이 "
        '됩니다. "실주 ÷ 수주 (중앙값)"은 실주 중앙값을 옆의 수주 중앙값으로 나눈 값이고, '
        '"실주 ÷ 수주 (평균)"은 실주 거래의 평균 체류를 수주 거래의 평균 체류로 나눈 값입니다.'
    ),
    "Cycle time": "영업 주기",
    "Won median (closed only)": "수주 중앙값 (종료 거래만)",
    "Lost median (closed only)": "실주 중앙값 (종료 거래만)",
    "Won median (deal clock)": "수주 중앙값 (거래 시계)",
    "Lost median (deal clock)": "실주 중앙값 (거래 시계)",
    "Open median": "진행 중 중앙값",
    "Lost ÷ won (medians)": "실주 ÷ 수주 (중앙값)",
    "Lost ÷ won (means)": "실주 ÷ 수주 (평균)",
    "Won n": "수주 n",
    "Lost n": "실주 n",
    "Open n": "진행 중 n",
    "Still open": "아직 진행 중",
    "KM median": "KM 중앙값",
    "Won deals: median": "수주 거래: 중앙값",
    "Won deals: mean": "수주 거래: 평균",
    "Won deals: n": "수주 거래: n",
    "Lost deals: median": "실주 거래: 중앙값",
    "Lost deals: mean": "실주 거래: 평균",
    "Lost deals: n": "실주 거래: n",
    "Sum of stage means": "단계별 평균의 합",
    "Measured mean cycle": "측정된 평균 주기",
    "Median days in each stage: won deals versus lost deals": (
        "단계별 체류 일수 중앙값: 수주 거래와 실주 거래"
    ),
    "For each stage, two horizontal bars: the median days won deals spent there (solid) and "
    "the median days lost deals spent there (hatched), with the lost median divided by the "
    "won median.": (
        "단계마다 가로 막대 두 개: 수주 거래가 머문 일수의 중앙값(채움)과 실주 거래가 머문 "
        "일수의 중앙값(빗금), 그리고 실주 중앙값을 수주 중앙값으로 나눈 값입니다."
    ),
    "Won deals (median)": "수주 거래 (중앙값)",
    "Lost deals (median)": "실주 거래 (중앙값)",
    "Days in stage (median)": "단계 체류 일수 (중앙값)",
    "Lost ÷ won median": "실주 ÷ 수주 중앙값",
    "Won deals: {days} median (n={n})": "수주 거래: 중앙값 {days} (n={n})",
    "Lost deals: {days} median (n={n})": "실주 거래: 중앙값 {days} (n={n})",
    "W": "수주",
    "L": "실주",
    "no closed deals": "종료된 거래 없음",
    # probabilities
    "The probability configured on each stage against what history says: the empirical win "
    "rate of deals that reached the stage (with its interval) and the Markov estimate, which "
    "also learns from deals that are still open.": (
        "각 단계에 설정된 확률과 과거 이력이 말하는 확률의 비교입니다. 그 단계에 도달한 거래의 "
        "실측 수주율(구간 포함)과, 아직 진행 중인 거래에서도 배우는 마르코프 추정치를 보여 "
        "줍니다."
    ),
    "Configured": "설정값",
    "Empirical": "실측",
    "Low": "하한",
    "High": "상한",
    "Markov": "마르코프",
    "Smoothed": "평활",
    "Deal clock": "거래 시계",
    "Dwell": "체류",
    "n": "n",
    "{column} (used)": "{column} (사용 중)",
    "The estimator in use, {estimator}, gives each deal a probability that depends on more "
    "than its stage (the time it has spent there), so it has no single column here.": (
        "사용 중인 추정 방식 {estimator}은(는) 단계뿐 아니라 그 단계에 머문 시간에 따라 거래마다 "
        "확률을 주므로, 여기에는 하나의 열로 나타나지 않습니다."
    ),
    "The process has no configured probabilities (every open stage is 0%, as in a process "
    "inferred from data): the configured column is no baseline, and the backtest leaves it "
    "out.": (
        "프로세스에 설정된 확률이 없습니다(데이터에서 추론한 프로세스처럼 모든 진행 단계가 "
        "0%입니다). 설정값 열은 기준이 되지 못하며, 백테스트에서도 제외됩니다."
    ),
    "Win probability by stage": "단계별 수주 확률",
    "Win probability by stage: configured, empirical and Markov": (
        "단계별 수주 확률: 설정값, 실측, 마르코프"
    ),
    "For each stage: the configured probability (hollow diamond), the empirical win rate of "
    "deals that reached the stage (filled circle) with its interval (whisker), and the Markov "
    "absorption estimate (triangle).": (
        "단계마다 설정된 확률(빈 마름모), 그 단계에 도달한 거래의 실측 수주율(채운 원)과 그 "
        "구간(수염), 마르코프 흡수 추정치(삼각형)를 그렸습니다."
    ),
    "Empirical (interval)": "실측 (구간)",
    "Probability of winning": "수주 확률",
    "Interval": "구간",
    # backtest
    "Each estimator was fitted on history before <b>{cutoff}</b> and scored on the deals "
    "that were open then and closed after it ({scored}).": (
        "각 추정 방식은 <b>{cutoff}</b> 이전의 이력으로 학습하고, 그때 진행 중이었다가 그 뒤에 "
        "종료된 거래로 평가했습니다({scored})."
    ),
    "Each estimator was fitted on history before <b>{cutoff}</b> and scored on the deals "
    "that were open then and closed after it.": (
        "각 추정 방식은 <b>{cutoff}</b> 이전의 이력으로 학습하고, 그때 진행 중이었다가 그 뒤에 "
        "종료된 거래로 평가했습니다."
    ),
    "Lower Brier score and log loss are better.": "브라이어 점수와 로그 손실은 낮을수록 좋습니다.",
    "Best: <b>{best}</b>.": "최적: <b>{best}</b>.",
    "Scores": "점수",
    "Reliability": "신뢰도",
    "Backtest scores": "백테스트 점수",
    "Estimator": "추정 방식",
    "Brier": "브라이어",
    "Log loss": "로그 손실",
    "No winner: {warning}.": "최적 방식 없음: {warning}.",
    "{estimator} is left out: {reason}.": "{estimator} 제외: {reason}.",
    "{scored} deals: {won} won, {lost} lost": "거래 {scored}건: 수주 {won}건, 실주 {lost}건",
    "Reliability of the probability estimators in the backtest": (
        "백테스트에서 확률 추정 방식의 신뢰도"
    ),
    "Observed win rate against predicted probability, one line per estimator; a perfectly "
    "calibrated estimator lies on the diagonal.": (
        "예측 확률 대비 관측 수주율이며, 추정 방식마다 선 하나입니다. 완벽하게 보정된 추정 "
        "방식은 대각선 위에 놓입니다."
    ),
    "Predicted probability": "예측 확률",
    "Observed win rate": "관측 수주율",
    "{estimator}: predicted {predicted}, observed {observed} (n={n})": (
        "{estimator}: 예측 {predicted}, 관측 {observed} (n={n})"
    ),
    # data quality
    "Problems found in the event logs and in their import that may bend the numbers above, "
    "most severe first.": (
        "이벤트 로그와 그 가져오기에서 발견되어 위의 수치를 왜곡할 수 있는 문제이며, 심각한 "
        "것부터 나열합니다."
    ),
    "Problems found in the event logs that may bend the numbers above.": (
        "이벤트 로그에서 발견되어 위의 수치를 왜곡할 수 있는 문제입니다."
    ),
    "Severity": "심각도",
    "Finding": "발견 사항",
    "Found in": "발견 위치",
    "Count": "건수",
    "What it means": "의미",
    "error": "오류",
    "warning": "경고",
    "info": "정보",
    # the terminal summary of stagegate report
    "Pipeline health: {process}": "파이프라인 현황: {process}",
    "[bold]{title}[/] as of {as_of}": "[bold]{title}[/] 기준 시점 {as_of}",
    "{n} deals: {open} open, {won} won, {lost} lost; win rate {win_rate}; open pipeline "
    "{open_amount} (weighted by {estimator}: {weighted}); median won cycle {cycle} days": (
        "거래 {n}건: 진행 중 {open}건, 수주 {won}건, 실주 {lost}건; 수주율 {win_rate}; 진행 중 "
        "파이프라인 {open_amount} ({estimator} 기준 가중: {weighted}); 수주 주기 중앙값 {cycle}일"
    ),
    "estimator [bold]{name}[/]: {reason}": "추정 방식 [bold]{name}[/]: {reason}",
    "probability by stage": "단계별 확률",
    "stage": "단계",
    "configured": "설정값",
    "empirical": "실측",
    "95% CI": "95% 신뢰구간",
    "best calibrated estimator [bold]{name}[/]": "가장 잘 보정된 추정 방식 [bold]{name}[/]",
    "[yellow]no winner[/]: {warning}": "[yellow]최적 방식 없음[/]: {warning}",
    "backtest (split {cutoff}): {best}": "백테스트 (분할 {cutoff}): {best}",
    "days in stage (medians; closed only, and on the deal clock counting open deals)": (
        "단계 체류 일수 (중앙값; 종료 거래만, 그리고 진행 중 거래를 포함한 거래 시계)"
    ),
    "won (closed)": "수주 (종료)",
    "lost (closed)": "실주 (종료)",
    "lost/won": "실주/수주",
    "won (deal clock)": "수주 (거래 시계)",
    "lost (deal clock)": "실주 (거래 시계)",
    "still open": "진행 중 비율",
    "stalled deals ({total}, first {shown} shown)": "정체된 거래 ({total}건 중 {shown}건 표시)",
    "deal": "거래",
    "days": "일수",
    "limit": "한도",
    "x won median": "수주 중앙값 대비",
    "amount": "금액",
    "slipping deals": "마감일이 밀리는 거래",
    "pushes": "연기 횟수",
    "days pushed": "연기 일수",
    "close date": "마감일",
    "forecast of won amount (weighted by {estimator})": "수주 금액 예측 ({estimator} 기준 가중)",
    "period": "기간",
    "deals": "거래 수",
    "HTML report written to {path}": "HTML 보고서를 {path}에 저장했습니다",
    # prose of the document, rebuilt from its fields
    "{name} was chosen for this report (--estimator {name}).": (
        "이 보고서에는 {name}을(를) 지정했습니다 (--estimator {name})."
    ),
    "The process has no configured probabilities (every open stage is 0%), so every weighted "
    "figure is 0.": (
        "프로세스에 설정된 확률이 없으므로(모든 진행 단계가 0%) 모든 가중 수치가 0입니다."
    ),
    "{name} is the best-calibrated estimator in the backtest (lowest Brier score, {brier} on "
    "{n} deals open at the cut-off and closed since).": (
        "{name}은(는) 백테스트에서 가장 잘 보정된 추정 방식입니다(브라이어 점수가 가장 낮음: "
        "분할 시점에 진행 중이었다가 그 뒤 종료된 거래 {n}건에서 {brier})."
    ),
    "there is no backtest (too little history before as_of)": (
        "백테스트가 없습니다(기준 시점 이전의 이력이 너무 적음)"
    ),
    "the backtest names no winner": "백테스트에서 최적 방식이 정해지지 않았습니다",
    "The process's configured probabilities are used: {why}.": (
        "프로세스에 설정된 확률을 사용합니다: {why}."
    ),
    "{name} is used: {why}, and the process has no configured probabilities (every open "
    "stage is 0%, as in a process inferred from data).": (
        "{name}을(를) 사용합니다: {why}. 또한 프로세스에 설정된 확률이 없습니다(데이터에서 "
        "추론한 프로세스처럼 모든 진행 단계가 0%)."
    ),
    "No closed deals yet: the cycle time is measured once deals close.": (
        "아직 종료된 거래가 없습니다: 영업 주기는 거래가 종료되면 측정됩니다."
    ),
    "The sum of the per-stage average durations is {stage_sum} days, the measured average "
    "cycle {measured} days ({gap}). The shortcut adds a stage's average even for deals that "
    "skipped the stage or were lost before it, and counts a re-entered stage once: weighting "
    "each stage by its visits per deal gives back the measured cycle exactly.": (
        "단계별 평균 체류 기간의 합은 {stage_sum}일, 측정된 평균 영업 주기는 {measured}일입니다"
        "({gap}). 이 간편 계산은 단계를 건너뛰었거나 그 전에 실주된 거래에도 단계 평균을 더하고, "
        "다시 들어간 단계는 한 번만 셉니다. 각 단계를 거래당 방문 수로 가중하면 측정된 주기와 "
        "정확히 같아집니다."
    ),
    # data-quality findings counted in the log (report._quality)
    "open deals whose expected close date has passed: reschedule or close them": (
        "예상 마감일이 지난 진행 중 거래입니다: 마감일을 다시 잡거나 종료하세요"
    ),
    "open deals without an amount: they are left out of weighted pipeline and forecast": (
        "금액이 없는 진행 중 거래입니다: 가중 파이프라인과 예측에서 빠집니다"
    ),
    "open deals without an expected close date: they cannot be forecast by period": (
        "예상 마감일이 없는 진행 중 거래입니다: 기간별로 예측할 수 없습니다"
    ),
    "stage changes made despite an unmet gate (each with its reason in the log)": (
        "게이트 조건을 채우지 못했는데도 이루어진 단계 변경입니다(각각의 사유는 로그에 있음)"
    ),
    "moves back to an earlier stage": "이전 단계로 되돌아간 이동입니다",
    "closed deals that were reopened": "다시 열린 종료 거래입니다",
    "stage changes taken from another system's history: never checked against the gates": (
        "다른 시스템의 이력에서 가져온 단계 변경입니다: 게이트 조건으로 검사된 적이 없습니다"
    ),
    "open deals the forecast leaves out (no amount or no close date)": (
        "예측에서 빠진 진행 중 거래입니다(금액이나 마감일이 없음)"
    ),
    "open stages without a configured probability (all 0%, as in a process inferred from "
    "data): the configured estimator is no baseline and is left out of the backtest": (
        "확률이 설정되지 않은 진행 단계입니다(데이터에서 추론한 프로세스처럼 모두 0%): 설정값 "
        "추정 방식은 기준이 되지 못하며 백테스트에서 제외됩니다"
    ),
    # the segment section (report._segments, _html.segments, _svg.segments_chart, the CLI)
    "By segment": "세그먼트별",
    "Segment": "세그먼트",
    "Closed": "종료",
    "Sample": "표본",
    "few closed deals": "종료 거래 적음",
    "Soft forecast": "불확실한 예측",
    "Soft share": "불확실 비율",
    "Stalled": "정체",
    "Stalled amount": "정체 금액",
    "No activity": "활동 없음",
    "Slipping": "마감 지연",
    "Past close date": "마감일 경과",
    "Healthy": "건전",
    "Why": "사유",
    "Deals at risk": "위험 거래",
    "Deals at risk by segment": "세그먼트별 위험 거래",
    "No deal is at risk.": "위험한 거래가 없습니다.",
    "{segment}: {count} deals at risk": "{segment}: 위험 거래 {count}건",
    "{share} soft": "불확실 {share}",
    "other ({count})": "기타 ({count})",
    "Weighted forecast of the period": "기간의 가중 예측",
    "Forecast of the period by segment: healthy and at risk": (
        "세그먼트별 기간 예측: 건전한 거래와 위험 거래"
    ),
    "One horizontal bar per segment, riskiest first: its weighted forecast for the period, "
    "split into deals that are healthy, stalled, without activity, slipping or past their "
    "close date (a deal counts in its first reason); the soft share is written beside each "
    "bar.": (
        "세그먼트마다 가로 막대 하나이며 위험이 큰 순서입니다: 기간의 가중 예측을 건전, 정체, "
        "활동 없음, 마감 지연, 마감일 경과 거래로 나눕니다(거래는 첫 번째 사유에 셉니다). "
        "막대 옆에 불확실 비율을 적습니다."
    ),
    "Soft forecast: the share of a segment's weighted forecast for the current period that "
    "rests on deals at risk (stalled in their stage, without activity for {activity_days} "
    "days, pushed at least {flag_pushes} times, or past their expected close date). Firm up "
    "or take out those deals first.": (
        "불확실한 예측: 세그먼트의 이번 기간 가중 예측 가운데 위험 거래(단계에 정체, "
        "{activity_days}일 동안 활동 없음, 마감일이 {flag_pushes}번 이상 미뤄짐, 또는 예상 "
        "마감일 경과)에 기대는 비율입니다. 이 거래들을 먼저 확정하거나 예측에서 빼세요."
    ),
    "The data carries no logged activities (a frame of stage history), so deals without "
    "activity are not counted.": (
        "데이터에 기록된 활동이 없어(단계 이력 프레임) 활동 없는 거래는 세지 않습니다."
    ),
    "Whose deals are stalled and slipping, and whose forecast is soft: one row per "
    "<b>{by}</b>, the riskiest first (the largest soft forecast). The forecast is the "
    "weighted amount of the open deals expected to close in <b>{period}</b> (estimator "
    "<b>{estimator}</b>); open deals count where they stand at as_of, the win rate and cycle "
    "count closed deals where they stood at the close.": (
        "누구의 거래가 정체되고 미뤄지는지, 누구의 예측이 불확실한지: <b>{by}</b>마다 한 행이며 "
        "위험이 큰 순서(불확실한 예측이 큰 순서)입니다. 예측은 <b>{period}</b>에 마감될 것으로 "
        "예상되는 진행 중 거래의 가중 금액입니다(추정 방식 <b>{estimator}</b>). 진행 중 거래는 "
        "기준 시점의 세그먼트에, 수주율과 주기는 종료 시점의 세그먼트에 셉니다."
    ),
    "* and “few closed deals”: fewer than 30 closed deals, so the win rate and cycle say little.": (
        "* 와 “종료 거래 적음”: 종료 거래가 30건 미만이라 수주율과 주기는 참고만 하세요."
    ),
    "* fewer than 30 closed deals: the win rate and cycle say little": (
        "* 종료 거래 30건 미만: 수주율과 주기는 참고만 하세요"
    ),
    "by {by}: forecast {period} (weighted by {estimator}), riskiest first ({shown} of "
    "{total})": "{by}별: {period} 예측({estimator} 가중), 위험이 큰 순서({total}개 중 {shown}개)",
    "deals at risk in the riskiest segments": "위험이 가장 큰 세그먼트의 위험 거래",
    "segment": "세그먼트",
    "open": "진행 중",
    "pipeline": "파이프라인",
    "forecast": "예측",
    "soft (share)": "불확실 (비율)",
    "stalled": "정체",
    "no activity": "활동 없음",
    "slipping": "마감 지연",
    "slipping / pushes": "마감 지연 / 연기",
    "overdue": "마감일 경과",
    "win rate": "수주율",
    "won cycle": "수주 주기",
    "why": "사유",
}
